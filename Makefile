# AotEvents — the two set-up commands are `make run` (the daemon) and `make test` (every suite).
SHELL := /bin/bash
DOTNET ?= dotnet
ARTIFACTS := artifacts
BINARY := $(ARTIFACTS)/aotevents

.PHONY: run publish build test test-deps bench load clean

# Builds the native-AOT executable (if needed) and runs it on its defaults (127.0.0.1:10001, ./data).
run: publish
	./$(BINARY)

# One self-contained native executable: artifacts/aotevents.
publish:
	$(DOTNET) publish src/AotEvents/AotEvents.csproj -c Release -r linux-x64 -o $(ARTIFACTS)/publish -p:TreatWarningsAsErrors=true --nologo
	cp --remove-destination $(ARTIFACTS)/publish/aotevents $(BINARY)
	@ls -l $(BINARY)

build:
	$(DOTNET) build AotEvents.sln -c Release --nologo

# Installs what the tests need (Chromium for the EventSource test, npm packages for the S2 SDK
# check), publishes the AOT binary for the black-box suite, runs every suite and prints
# "N passed, M failed".
test: test-deps publish
	./build/run-tests.sh

test-deps:
	./build/install-test-deps.sh

# BenchmarkDotNet micro-benchmarks (in-process paths).
bench:
	$(DOTNET) run -c Release --project bench/AotEvents.Benchmarks -- --filter '*'

# Load harness over loopback: aotevents vs nginx vs the ASP.NET Core peer (prints a table).
load: publish
	./bench/load/run.sh

clean:
	rm -rf $(ARTIFACTS)
