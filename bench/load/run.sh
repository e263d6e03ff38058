#!/usr/bin/env bash
# Load harness (`make load`): aotevents vs nginx `return 204` vs the ASP.NET Core peer, over loopback,
# in one run; prints one markdown table. See bench/load/README.md for what each figure means.
#
# Knobs (environment): DURATION (s per measured wrk run, 10), WARMUP (s of wrk warm-up per target, 3),
# ROUNDS (interleaved measured wrk rounds per target, best counts, 3),
# THREADS (2), CONNECTIONS (64), SSE_SUBSCRIBERS (100), SSE_RATE (2000), SSE_SECONDS (10),
# IDLE_SUBSCRIBERS (1000), PIN (1: servers on CPU 1, load generators on CPU 0; 0: share both),
# BASE_PORT (18000: nginx +80, daemon +1, peer +2), DATA_ROOT (parent of the temp data dirs, /tmp),
# QUIET_WAIT (s to wait for other load to settle at the start, 120; QUIET_ROUND_WAIT before each round, 20), NICE (0; -10 runs the harness ahead of other work),
# AOTEVENTS_BIN (artifacts/aotevents; built with `make publish` when missing).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
SSE_SUBSCRIBERS=${SSE_SUBSCRIBERS:-100}
SSE_RATE=${SSE_RATE:-2000}
SSE_SECONDS=${SSE_SECONDS:-10}
IDLE_SUBSCRIBERS=${IDLE_SUBSCRIBERS:-1000}
PIN=${PIN:-1}
BASE_PORT=${BASE_PORT:-18000}
NGINX_PORT=$((BASE_PORT + 80))
DAEMON_PORT=$((BASE_PORT + 1))
PEER_PORT=$((BASE_PORT + 2))
DATA_ROOT=${DATA_ROOT:-/tmp}
BIN=${AOTEVENTS_BIN:-$ROOT/artifacts/aotevents}
OUT=$ROOT/artifacts/load
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Everything here talks to 127.0.0.1; make sure no client routes it through a proxy.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'

log() { printf '[load %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- prerequisites
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v curl >/dev/null || need+=(curl)
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} (apt-get)"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v dotnet >/dev/null || die "dotnet SDK not found"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((IDLE_SUBSCRIBERS + 200)) ] || die "ulimit -n is $(ulimit -n); need $((IDLE_SUBSCRIBERS + 200))"

NPROC=$(nproc)
if [ "$PIN" = 1 ] && [ "$NPROC" -ge 2 ]; then
  SERVER_PIN=(taskset -c 1); LOAD_PIN=(taskset -c 0)
  PIN_NOTE="servers pinned to CPU 1, load generators (wrk, sseload) to CPU 0 (taskset)"
else
  SERVER_PIN=(); LOAD_PIN=()
  PIN_NOTE="no pinning: servers and load generators share all $NPROC CPUs"
fi
# NICE=-10 (root) runs every process of the harness ahead of other work on a machine that cannot be
# made quiet (it only shifts CPU away from others; it does not make the harness itself faster).
# With sched_autogroup on, nice only ranks threads within one session, so the harness then runs in a
# session of its own (setsid; Ctrl-C from the terminal no longer reaches it) whose autogroup gets NICE.
NICE=${NICE:-0}
if [ "$NICE" != 0 ] && [ -z "${AOTEVENTS_LOAD_SESSION:-}" ] && [ -w /proc/self/autogroup ]; then
  AOTEVENTS_LOAD_SESSION=1 exec setsid --wait "$0" "$@"
fi
if [ "$NICE" != 0 ] && [ -w /proc/self/autogroup ]; then echo "$NICE" >"/proc/$$/autogroup" || true; fi
if [ "$NICE" != 0 ]; then
  SERVER_PIN=(nice -n "$NICE" "${SERVER_PIN[@]}"); LOAD_PIN=(nice -n "$NICE" "${LOAD_PIN[@]}")
  PIN_NOTE="$PIN_NOTE; harness processes at nice $NICE"
fi

for port in "$NGINX_PORT" "$DAEMON_PORT" "$PEER_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is in use (set BASE_PORT)"; fi
done

# ---------------------------------------------------------------- build
mkdir -p "$OUT"
if [ ! -x "$BIN" ]; then
  log "building the daemon (make publish)"
  make -C "$ROOT" publish >&2
fi
log "publishing the ASP.NET Core peer and the SSE load client"
dotnet publish "$ROOT/bench/AspNetPeer/AspNetPeer.csproj" -c Release -o "$OUT/aspnetpeer" -p:TreatWarningsAsErrors=true --nologo -v q >&2
dotnet publish "$ROOT/bench/load/SseLoad/SseLoad.csproj" -c Release -o "$OUT/sseload" -p:TreatWarningsAsErrors=true --nologo -v q >&2
PEER=$OUT/aspnetpeer/aspnetpeer
SSELOAD=$OUT/sseload/sseload

# ---------------------------------------------------------------- processes
RUN=$(mktemp -d "$DATA_ROOT/aotevents-load.XXXXXX")
RESULTS=$OUT/results-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RESULTS"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() { # stop <pid>: ends one of our servers and forgets it
  local pid=$1 keep=() p
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

wait_http() { # wait_http <url> <pid>
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || die "process $2 exited before serving $1"
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  die "$1 did not answer in 10 s"
}

start_daemon() { # → DAEMON_PID
  local dir; dir=$(mktemp -d "$RUN/daemon.XXXX")
  HOST=127.0.0.1 PORT=$DAEMON_PORT EVENTS_DATA_DIR=$dir "${SERVER_PIN[@]}" "$BIN" >>"$RESULTS/daemon.log" 2>&1 &
  DAEMON_PID=$!; PIDS+=("$DAEMON_PID")
  wait_http "http://127.0.0.1:$DAEMON_PORT/healthz" "$DAEMON_PID"
}

start_peer() { # → PEER_PID
  local dir; dir=$(mktemp -d "$RUN/peer.XXXX")
  PORT=$PEER_PORT EVENTS_DATA_DIR=$dir "${SERVER_PIN[@]}" "$PEER" >>"$RESULTS/peer.log" 2>&1 &
  PEER_PID=$!; PIDS+=("$PEER_PID")
  wait_http "http://127.0.0.1:$PEER_PORT/healthz" "$PEER_PID"
}

start_nginx() { # → NGINX_PID (the master; it has one worker)
  local dir=$RUN/nginx; mkdir -p "$dir"
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$NGINX_PORT|g" "$HERE/nginx.conf.in" >"$dir/nginx.conf"
  "${SERVER_PIN[@]}" "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >>"$RESULTS/nginx.log" 2>&1 &
  NGINX_PID=$!; PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$NGINX_PORT/" "$NGINX_PID"
}

# Opens a capture session and publishes a few events, so "idle" means "started and used".
prime() { # prime <port>
  local base=http://127.0.0.1:$1 i code
  code=$(curl -s -o "$RESULTS/start-$1.json" -w '%{http_code}' -X POST "$base/events/start")
  [ "$code" = 201 ] || [ "$code" = 409 ] || die "POST /events/start on $1 answered $code"
  for i in $(seq 10); do
    curl -s -o /dev/null -H 'Content-Type: application/json' \
      -d "{\"type\":\"console.log\",\"data\":{\"i\":$i}}" "$base/events/publish"
  done
  curl -s -o /dev/null "$base/healthz"
}

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ticks() { # utime+stime of a process and its children (nginx worker)
  local total=0 p
  for p in "$1" $(cat "/proc/$1/task/"*/children 2>/dev/null); do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)
machine_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 }' /proc/stat; } # user+nice+system of all CPUs, in ticks (softirq excluded: loopback traffic lands there)
machine_busy_pct() { # machine_busy_pct <seconds>: % of all CPUs busy over that window
  local a b; a=$(machine_busy); sleep "$1"; b=$(machine_busy)
  echo $(( (b - a) * 100 / HZ / $1 / NPROC ))
}

# field <file> <key>: value of key=value on the file's RESULT line
field() { grep '^RESULT' "$1" | tail -1 | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

# run_wrk <name> <port> <script> <seconds> <server pid> → $RESULTS/<name>.txt; <name>.cpu holds the CPU %
# (100 = one CPU, over the run's wall time) used by the server, by wrk, and by every other process.
run_wrk() {
  local name=$1 port=$2 script=$3 seconds=$4 pid=$5 before after m0 m1
  before=$(cpu_ticks "$pid"); m0=$(machine_busy)
  local TIMEFORMAT='%3R %3U %3S'
  { time "${LOAD_PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --timeout 5s --latency -s "$HERE/$script" \
    "http://127.0.0.1:$port/events/publish" >"$RESULTS/$name.txt" 2>&1 || true; } 2>"$RESULTS/$name.time"
  after=$(cpu_ticks "$pid"); m1=$(machine_busy)
  awk -v s=$(( after - before )) -v m=$(( m1 - m0 )) -v hz="$HZ" '{
      real = $1; w = ($2 + $3) * hz; o = m - s - w; if (o < 0) o = 0
      printf "server=%d wrk=%d others=%d\n", s / hz / real * 100, w / hz / real * 100, o / hz / real * 100 }' \
    "$RESULTS/$name.time" >"$RESULTS/$name.cpu"
  grep -q '^RESULT' "$RESULTS/$name.txt" || die "wrk $name failed: $(tail -3 "$RESULTS/$name.txt")"
}

# wait_quiet: before each measured round, wait (at most QUIET_ROUND_WAIT s) for a 1 s window in which
# the machine is under 10 % busy, so bursts of unrelated work do not land in a round.
QUIET_ROUND_WAIT=${QUIET_ROUND_WAIT:-20}
wait_quiet() {
  local waited=0
  while [ "$(machine_busy_pct 1)" -ge 10 ] && [ "$waited" -lt "$QUIET_ROUND_WAIT" ]; do waited=$((waited + 1)); done
  [ "$waited" -eq 0 ] || log "waited ${waited}s for other load to settle"
}

# best_round <prefix>: copies the round with the most req/s to <prefix>.txt / .cpu
best_round() {
  local best= rps max=-1 f
  for f in "$RESULTS/$1"-r*.txt; do
    rps=$(field "$f" rps)
    if [ "${rps:-0}" -gt "$max" ]; then max=$rps; best=$f; fi
  done
  cp "$best" "$RESULTS/$1.txt"; cp "${best%.txt}.cpu" "$RESULTS/$1.cpu"
}

# ---------------------------------------------------------------- phase 1: throughput, peak RSS, fan-out
# The figures are only meaningful on an otherwise idle machine: wait (bounded) for other load to settle.
QUIET_WAIT=${QUIET_WAIT:-120}
BUSY_BEFORE=$(machine_busy_pct 2)
waited=0
while [ "$BUSY_BEFORE" -gt 10 ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
  log "machine is ${BUSY_BEFORE}% busy with other work; waiting for it to settle (up to ${QUIET_WAIT}s)"
  sleep 8; waited=$((waited + 10))
  BUSY_BEFORE=$(machine_busy_pct 2)
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "starting nginx, aotevents and the peer (results in $RESULTS)"
start_nginx; start_daemon; start_peer
prime "$DAEMON_PORT"; prime "$PEER_PORT"
sleep 1
DAEMON_IDLE_KB=$(status_kb "$DAEMON_PID" VmRSS)
PEER_IDLE_KB=$(status_kb "$PEER_PID" VmRSS)
NGINX_WORKER=$(cat "/proc/$NGINX_PID/task/"*/children 2>/dev/null | awk '{print $1}')
NGINX_IDLE_KB=$(( $(status_kb "$NGINX_PID" VmRSS) + $(status_kb "${NGINX_WORKER:-$NGINX_PID}" VmRSS) ))

POST_TARGETS="nginx:$NGINX_PORT:$NGINX_PID daemon:$DAEMON_PORT:$DAEMON_PID peer:$PEER_PORT:$PEER_PID"
for target in $POST_TARGETS; do
  IFS=: read -r name port pid <<<"$target"
  if [ "$WARMUP" -gt 0 ]; then
    log "POST single event: $name warm-up ${WARMUP}s"
    run_wrk "post-$name-warmup" "$port" post-event.lua "$WARMUP" "$pid"
  fi
done
# ROUNDS interleaved rounds (nginx, daemon, peer, nginx, …); the best round of each target counts,
# so a burst of other work on the machine hurts one round, not the comparison.
for round in $(seq "$ROUNDS"); do
  for target in $POST_TARGETS; do
    IFS=: read -r name port pid <<<"$target"
    wait_quiet
    log "POST single event: $name ${DURATION}s (-t$THREADS -c$CONNECTIONS), round $round/$ROUNDS"
    run_wrk "post-$name-r$round" "$port" post-event.lua "$DURATION" "$pid"
  done
done
for name in nginx daemon peer; do best_round "post-$name"; done
DAEMON_PEAK_KB=$(status_kb "$DAEMON_PID" VmHWM)
PEER_PEAK_KB=$(status_kb "$PEER_PID" VmHWM)
DAEMON_AFTER_POST_KB=$(status_kb "$DAEMON_PID" VmRSS)
PEER_AFTER_POST_KB=$(status_kb "$PEER_PID" VmRSS)
stop "$NGINX_PID"

for round in $(seq "$ROUNDS"); do
  for target in daemon:$DAEMON_PORT:$DAEMON_PID peer:$PEER_PORT:$PEER_PID; do
    IFS=: read -r name port pid <<<"$target"
    wait_quiet
    log "NDJSON 100-event batches: $name ${DURATION}s, round $round/$ROUNDS"
    run_wrk "ndjson-$name-r$round" "$port" post-ndjson.lua "$DURATION" "$pid"
  done
done
for name in daemon peer; do best_round "ndjson-$name"; done

for target in daemon:$DAEMON_PORT peer:$PEER_PORT; do
  IFS=: read -r name port <<<"$target"
  wait_quiet
  log "SSE fan-out: $name, $SSE_SUBSCRIBERS subscribers, $SSE_RATE events/s, ${SSE_SECONDS}s (+2s warm-up)"
  timeout $((SSE_SECONDS + 60)) "${LOAD_PIN[@]}" "$SSELOAD" fanout --url "http://127.0.0.1:$port" \
    --subscribers "$SSE_SUBSCRIBERS" --rate "$SSE_RATE" --seconds "$SSE_SECONDS" --warmup 2 \
    >"$RESULTS/sse-$name.txt" 2>&1 || true
  grep -q '^RESULT' "$RESULTS/sse-$name.txt" || echo "RESULT ok=0 error=no-result" >>"$RESULTS/sse-$name.txt"
done
stop "$DAEMON_PID"; stop "$PEER_PID"

# ---------------------------------------------------------------- phase 2: idle subscribers on fresh processes
for name in daemon peer; do
  if [ "$name" = daemon ]; then start_daemon; pid=$DAEMON_PID; port=$DAEMON_PORT
  else start_peer; pid=$PEER_PID; port=$PEER_PORT; fi
  prime "$port"; sleep 1
  log "idle subscribers: $name, $IDLE_SUBSCRIBERS connections"
  timeout 90 "${LOAD_PIN[@]}" "$SSELOAD" idle --url "http://127.0.0.1:$port" --pid "$pid" \
    --count "$IDLE_SUBSCRIBERS" --settle 2 >"$RESULTS/idle-$name.txt" 2>&1 || true
  grep -q '^RESULT' "$RESULTS/idle-$name.txt" || echo "RESULT ok=0 error=no-result" >>"$RESULTS/idle-$name.txt"
  stop "$pid"
done

# ---------------------------------------------------------------- table
R=$RESULTS
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }
kbmb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
num() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } print s r }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
meets() { awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN { ok = (op == "ge") ? (v >= g) : (v <= g); print (v == "" || v == "n/a") ? "n/a" : (ok ? "yes" : "**NO**") }'; }
wrkcell() { # wrkcell <file> <multiplier>
  local rps p50 p99 bad
  rps=$(field "$1" rps); p50=$(field "$1" p50_ms); p99=$(field "$1" p99_ms)
  bad=$(( $(field "$1" non2xx) + $(field "$1" socket_errors) ))
  printf '%s (p50 %s ms, p99 %s ms%s)' "$(num "$(awk -v r="$rps" -v m="$2" 'BEGIN { print r * m }')")" "$p50" "$p99" \
    "$([ "$bad" -gt 0 ] && echo ", **$bad errors**")"
}
ssecell() {
  local f=$1
  if [ "$(field "$f" ok)" != 1 ] && [ -z "$(field "$f" complete)" ]; then echo "failed: $(grep -v '^RESULT' "$f" | tail -1)"; return; fi
  printf '%s/%s complete, %s events, %s deliveries (gaps %s, out-of-order %s, dropped %s)' \
    "$(field "$f" complete)" "$(field "$f" subscribers)" "$(num "$(field "$f" published)")" \
    "$(num "$(field "$f" deliveries)")" "$(field "$f" gaps)" "$(field "$f" out_of_order)" "$(field "$f" dropped_frames)"
}

D_RPS=$(field "$R/post-daemon.txt" rps); P_RPS=$(field "$R/post-peer.txt" rps); N_RPS=$(field "$R/post-nginx.txt" rps)
D_NDJSON=$(awk -v r="$(field "$R/ndjson-daemon.txt" rps)" 'BEGIN { print r * 100 }')
D_BAD=$(( $(field "$R/post-daemon.txt" non2xx) + $(field "$R/post-daemon.txt" socket_errors) ))
R_NGINX=$(ratio "$D_RPS" "$N_RPS"); R_PEER=$(ratio "$D_RPS" "$P_RPS")
[ "$D_BAD" -eq 0 ] || { R_NGINX="$R_NGINX (errors!)"; R_PEER="$R_PEER (errors!)"; }
D_P99=$(field "$R/sse-daemon.txt" p99_ms); P_P99=$(field "$R/sse-peer.txt" p99_ms)
D_SSE_OK=$(field "$R/sse-daemon.txt" ok)
BIN_BYTES=$(stat -c %s "$BIN")
PEER_APP_BYTES=$(du -sb "$OUT/aspnetpeer" | cut -f1)
DOTNET_ROOT_DIR=$(dirname "$(readlink -f "$(command -v dotnet)")")
RT_VER=$(dotnet --list-runtimes | awk '/Microsoft.AspNetCore.App 10\./ { v = $2 } END { print v }')
SHARED_BYTES=$(du -sbc "$DOTNET_ROOT_DIR/shared/Microsoft.NETCore.App/$RT_VER" "$DOTNET_ROOT_DIR/shared/Microsoft.AspNetCore.App/$RT_VER" \
  "$DOTNET_ROOT_DIR/host/fxr" 2>/dev/null | tail -1 | cut -f1)
D_SUB=$(field "$R/idle-daemon.txt" per_sub_bytes); P_SUB=$(field "$R/idle-peer.txt" per_sub_bytes)
CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)

{
echo
echo "### AotEvents load harness — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Machine: $NPROC × $CPU_MODEL, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r); loopback only."
echo "wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }') -t$THREADS -c$CONNECTIONS, best of $ROUNDS interleaved ${DURATION}s rounds after a ${WARMUP}s warm-up; $PIN_NOTE."
echo "Other load: machine ${BUSY_BEFORE}% busy just before the run (load average $LOAD_BEFORE)."
echo "nginx $("$NGINX" -v 2>&1 | sed 's|.*/||') (worker_processes 1, \`return 204\`); ASP.NET Core $RT_VER peer (Kestrel minimal API, framework-dependent JIT, workstation non-concurrent GC)."
echo
echo "| measure | aotevents | ASP.NET Core peer | nginx \`return 204\` | goal | met |"
echo "|---|---|---|---|---|---|"
echo "| POST one event (~300 B JSON), req/s | $(wrkcell "$R/post-daemon.txt" 1) | $(wrkcell "$R/post-peer.txt" 1) | $(wrkcell "$R/post-nginx.txt" 1) | | |"
echo "| … aotevents / nginx | $R_NGINX | | | ≥ 0.8 | $(meets "${R_NGINX%% *}" ge 0.8) |"
echo "| … aotevents / peer | $R_PEER | | | ≥ 1.5 | $(meets "${R_PEER%% *}" ge 1.5) |"
cpucell() { awk '{ split($1, s, "="); split($2, w, "="); split($3, o, "="); printf "server %s%%, wrk %s%%, other processes %s%%", s[2], w[2], o[2] }' "$1"; }
echo "| … CPU during the run (100% = one CPU) | $(cpucell "$R/post-daemon.cpu") | $(cpucell "$R/post-peer.cpu") | $(cpucell "$R/post-nginx.cpu") | | |"
# Server CPU time per request (its CPU share × wall time ÷ requests): steadier than req/s when the host is noisy.
cpureq() { awk -v c="$(tr ' ' '\n' <"$1.cpu" | awk -F= '$1 == "server" { print $2 }')" -v r="$(field "$1.txt" rps)" \
  'BEGIN { if (r > 0) printf "%.1f µs", c * 10000 / r; else print "n/a" }'; }
echo "| … server CPU per request | $(cpureq "$R/post-daemon") | $(cpureq "$R/post-peer") | $(cpureq "$R/post-nginx") | | |"
echo "| NDJSON, 100 events/request, events/s | $(wrkcell "$R/ndjson-daemon.txt" 100) | $(wrkcell "$R/ndjson-peer.txt" 100) | — | ≥ 400,000 | $(meets "$D_NDJSON" ge 400000) |"
echo "| SSE: $SSE_SUBSCRIBERS subscribers, $SSE_RATE events/s for ${SSE_SECONDS}s, every event in order | $(ssecell "$R/sse-daemon.txt") | $(ssecell "$R/sse-peer.txt") | — | all complete | $([ "$D_SSE_OK" = 1 ] && echo yes || echo '**NO**') |"
echo "| SSE publish→receive latency p50 / p99 (max) | $(field "$R/sse-daemon.txt" p50_ms) / $D_P99 ms ($(field "$R/sse-daemon.txt" max_ms)) | $(field "$R/sse-peer.txt" p50_ms) / $P_P99 ms ($(field "$R/sse-peer.txt" max_ms)) | — | p99 ≤ 10 ms | $(meets "$D_P99" le 10) |"
echo "| binary size | $(mb "$BIN_BYTES") | $(mb "$PEER_APP_BYTES") app + $(mb "$SHARED_BYTES") shared runtime | — | ≤ 8 MB | $(meets "$BIN_BYTES" le 8388608) |"
echo "| idle RSS (started, session open, 10 events) | $(kbmb "$DAEMON_IDLE_KB") | $(kbmb "$PEER_IDLE_KB") | $(kbmb "$NGINX_IDLE_KB") | ≤ 8 MB | $(meets "$DAEMON_IDLE_KB" le 8192) |"
echo "| peak RSS during POST load (VmHWM) | $(kbmb "$DAEMON_PEAK_KB") | $(kbmb "$PEER_PEAK_KB") | — | ≤ 32 MB | $(meets "$DAEMON_PEAK_KB" le 32768) |"
echo "| RSS per idle SSE subscriber ($IDLE_SUBSCRIBERS subscribers) | $(num "$D_SUB") B | $(num "$P_SUB") B | — | ≤ 8 KB | $(meets "$D_SUB" le 8192) |"
echo
echo "CPU used by other processes during each measured wrk round (100% = one CPU; above ~10% the round was disturbed): $(for f in "$R"/post-*-r*.cpu "$R"/ndjson-*-r*.cpu; do printf '%s %s%%; ' "$(basename "$f" .cpu)" "$(tr ' ' '\n' <"$f" | awk -F= '$1 == "others" { print $2 }')"; done)"
echo "Raw output: ${RESULTS#"$ROOT"/}/ (wrk latency distributions, sseload and server logs)."
} | tee "$RESULTS/table.md"
