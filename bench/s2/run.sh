#!/usr/bin/env bash
# S2 shipping benchmark: events/s shipped to the in-memory S2 stand-in over loopback (defaults and
# S2_BATCHER_MAX_RECORDS=1000), and the daemon's RSS while S2 is down and 100k events are published.
# Usage: bench/s2/run.sh [--events N] [--down-events N] [--binary PATH]   (builds artifacts/aotevents if missing)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
[ -x artifacts/aotevents ] || make publish
exec dotnet run -c Release --project bench/s2 -- "$@"
