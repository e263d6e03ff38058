#!/usr/bin/env bash
# Replay benchmark: time to the first replayed frame for a resume 1M events back, replay throughput
# from the JSONL files, and the daemon's RSS growth while one subscriber catches up 1M events versus
# while one live subscriber receives events. Prints one markdown table.
# Usage: bench/replay/run.sh [--events N] [--live-events N] [--binary PATH]   (builds artifacts/aotevents if missing)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
[ -x artifacts/aotevents ] || make publish
exec dotnet run -c Release --project bench/replay -- "$@"
