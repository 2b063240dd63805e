#!/usr/bin/env bash
# Impairment matrix: single-stream throughput and request latency through the tunnel under added round-trip time
# and jitter, next to raw TCP through the same impairment, plus the tunnel with a small fixed stream window.
#
#   tunnel2-load-tests/scripts/impairment.sh [options]
#
# Layout (all on 127.0.0.1, ports of its own):
#   raw:    LoadTests ──► FaultProxy :12211 ──► TestBackend :12207
#   tunnel: LoadTests ──► TunnelServer :12200 ◄══ uplinks ══ FaultProxy :12210 ◄── TunnelClient ──► TestBackend
# Each row sets the same toxics on both proxies, both directions: latency = RTT/2, jitter = RTT jitter/2.
# Per row: (a) LoadTests speedtest, 1 stream, download, raw and tunnel alternated; (b) LoadTests rate, GET
# /loadtest/get at 20 RPS, raw then tunnel. Then the tunnel again with client and server stream windows fixed at
# 64 KiB (InitialStreamWindowSize = MaxStreamWindowSize = 65536), download only.
#
# Options:
#   --seconds N     measured seconds per speed test run (default 10; a 2 s unmeasured warm-up comes first).
#   --reps N        speed test runs per path and row, alternated; the table shows medians (default 2).
#   --rows LIST     rows to run, comma separated, from: 0, 3, 3j, 200, 200j (default all).
#   --buffer-size S FaultProxy --buffer-size (default 256k; see docs/reliability.md "Impairment matrix").
#   --no-doc        do not rewrite docs/reliability.md (the table is always in the run folder).
#   --no-build      use the existing Release binaries.
#   -h, --help      this text.
# Environment: TUNNEL2_IMP_BASE_PORT (12200): the five ports are BASE, BASE+7, BASE+10, BASE+11 (and none else).
#
# Writes artifacts/impairment/<timestamp>/ (table.md, raw JSON of every measurement, logs) and, unless --no-doc,
# the table between <!-- impairment:begin --> and <!-- impairment:end --> in docs/reliability.md. Stops everything
# it started, also on Ctrl-C. Exit code: 0 done (whatever the numbers), 1 the script failed, 130 interrupted.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BASE_PORT="${TUNNEL2_IMP_BASE_PORT:-12200}"
SERVER_PORT=$BASE_PORT
BACKEND_PORT=$((BASE_PORT + 7))
PROXY_TUNNEL_PORT=$((BASE_PORT + 10))
PROXY_RAW_PORT=$((BASE_PORT + 11))
BACKEND_URL="http://127.0.0.1:$BACKEND_PORT"
SERVER_URL="http://127.0.0.1:$SERVER_PORT"
RAW_URL="http://127.0.0.1:$PROXY_RAW_PORT"
TUNNEL_BASE="$SERVER_URL/session/$SESSION"
PAYLOAD=2GiB            # TestBackend's largest /loadtest/bytes: one request spans a whole run at these rates
LATENCY_RPS=20
LATENCY_SECONDS=10
SMALL_WINDOW=65536
READY_ATTEMPTS=100
READY_INTERVAL=0.2
READY_CURL_TIMEOUT=5
READY_TAIL=20
LOG_TIME=1
START_LOG=none
STOP_LOG=0
INTERRUPT_MESSAGE="interrupted; stopping everything this script started"

seconds=10
reps=2
rows="0,3,3j,200,200j"
buffer_size=256k
write_doc=1
build=1
while (($#)); do
  case "$1" in
    --seconds) shift; seconds="${1:?--seconds needs a value}" ;;
    --reps) shift; reps="${1:?--reps needs a value}" ;;
    --rows) shift; rows="${1:?--rows needs a value}" ;;
    --buffer-size) shift; buffer_size="${1:?--buffer-size needs a value}" ;;
    --no-doc) write_doc=0 ;;
    --no-build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 3 ]] || die "--seconds must be a whole number ≥ 3"
[[ "$reps" =~ ^[0-9]+$ && "$reps" -ge 1 ]] || die "--reps must be a whole number ≥ 1"

# Row id → "label|RTT ms|RTT jitter ms".
row_spec() {
  case "$1" in
    0) echo "0 ms|0|0" ;;
    3) echo "3 ms|3|0" ;;
    3j) echo "3 ms ± 1 ms|3|1" ;;
    200) echo "200 ms|200|0" ;;
    200j) echo "200 ms ± 50 ms|200|50" ;;
    *) return 1 ;;
  esac
}
ROWS=()
for r in ${rows//,/ }; do
  row_spec "$r" >/dev/null || die "unknown row '$r' (use 0, 3, 3j, 200, 200j)"
  ROWS+=("$r")
done
((${#ROWS[@]})) || die "no rows"

command -v dotnet >/dev/null || die "dotnet not found"
command -v jq >/dev/null || die "jq not found (apt-get install jq)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
cd "$REPO_ROOT"
if ((build)); then
  build_projects src/TunnelServer/TunnelServer.csproj src/TunnelClient/TunnelClient.csproj \
    tunnel2-load-tests/TestBackend/TestBackend.csproj tunnel2-load-tests/FaultProxy/FaultProxy.csproj \
    tunnel2-load-tests/LoadTests/LoadTests.csproj
fi
BACKEND_DIR=tunnel2-load-tests/TestBackend/bin/Release/net10.0
SERVER_DIR=src/TunnelServer/bin/Release/net10.0
CLIENT_DIR=src/TunnelClient/bin/Release/net10.0
PROXY_DLL="$REPO_ROOT/tunnel2-load-tests/FaultProxy/bin/Release/net10.0/FaultProxy.dll"
HARNESS_DLL="$REPO_ROOT/tunnel2-load-tests/LoadTests/bin/Release/net10.0/LoadTests.dll"
for f in "$BACKEND_DIR/TestBackend.dll" "$SERVER_DIR/TunnelServer.dll" "$CLIENT_DIR/TunnelClient.dll" "$PROXY_DLL" "$HARNESS_DLL"; do
  [[ -f "$f" ]] || die "$f missing (build first, or drop --no-build)"
done

RUN_DIR="$(new_run_dir "$REPO_ROOT/artifacts/impairment" "$(date -u +%Y%m%d-%H%M%S)")"
mkdir -p "$RUN_DIR/logs" "$RUN_DIR/raw"
LOG_DIR="$RUN_DIR/logs"
LOAD_BEFORE="$(load_average)"

# ---------------------------------------------------------------------------------------------------- processes
declare -A CONTROL_FDS=()
# shellcheck disable=SC2317  # called from on_exit
close_controls() {
  local name fd
  for name in "${!CONTROL_FDS[@]}"; do fd=${CONTROL_FDS[$name]}; exec {fd}>&- || true; done
  CONTROL_FDS=()
}
cleanup_first() { close_controls; }
install_traps

# A FaultProxy whose standard input is a FIFO this script keeps open, so toxics change while connections stay up.
start_proxy() {
  local name="$1" target="$2" port="$3" fifo="$RUN_DIR/$1.ctl" fd
  mkfifo "$fifo"
  (exec dotnet "$PROXY_DLL" --target "$target" --listen "127.0.0.1:$port" --buffer-size "$buffer_size" --seed 1 <"$fifo") \
    >>"$LOG_DIR/$name.log" 2>&1 &
  track "$name" "$!"
  exec {fd}>"$fifo"
  CONTROL_FDS[$name]=$fd
  wait_until "$name" "$LAST_PID" "" grep -q '^listening' "$LOG_DIR/$name.log"
}

proxy_command() { # NAME COMMAND...: one control line; the reply lands in the proxy's log
  echo "$2" >&"${CONTROL_FDS[$1]}"
}

# The tunnel: server (Production, dev grant) and client (Development) dialling through the tunnel proxy.
# Extra arguments (NAME=VALUE) go to both, e.g. the window limits.
start_tunnel() {
  dev_grant_env
  start TunnelServer "$SERVER_DIR" "${DEV_GRANT_ENV[@]}" "$@" -- dotnet TunnelServer.dll --urls "$SERVER_URL"
  SERVER_PID=$LAST_PID
  wait_ready TunnelServer "$SERVER_URL/healthz"
  start TunnelClient "$CLIENT_DIR" DOTNET_ENVIRONMENT=Development \
    Tunnel__Server="http://127.0.0.1:$PROXY_TUNNEL_PORT" Tunnel__Backend="$BACKEND_URL" "Tunnel__Routes__/loadtest=$BACKEND_URL" \
    Tunnel__StatusUrl= "$@" -- dotnet TunnelClient.dll
  CLIENT_PID=$LAST_PID
  wait_ready TunnelClient "$TUNNEL_BASE/loadtest/ping"
}

set_impairment() { # ROW: the same toxics on both proxies, both directions
  local spec rtt jitter half half_jitter name
  spec="$(row_spec "$1")"
  rtt="$(cut -d'|' -f2 <<<"$spec")"
  jitter="$(cut -d'|' -f3 <<<"$spec")"
  half="$(awk -v v="$rtt" 'BEGIN { printf "%g", v / 2 }')"
  half_jitter="$(awk -v v="$jitter" 'BEGIN { printf "%g", v / 2 }')"
  for name in proxy-tunnel proxy-raw; do
    if ((rtt == 0 && jitter == 0)); then
      proxy_command "$name" "both clear"
    else
      proxy_command "$name" "both latency=${half}ms jitter=${half_jitter}ms"
    fi
  done
  TOXICS="latency=${half}ms jitter=${half_jitter}ms per direction"
  ((rtt == 0 && jitter == 0)) && TOXICS="none"
  # Let bytes queued under the previous setting drain.
  sleep 1
}

# speedtest OUT.json URL... → MiB/s medians per label on stdout as "label value"
speed() {
  local json="$1"; shift
  local args=() url
  for url in "$@"; do args+=(--url "$url"); done
  timeout $(((seconds + 10) * reps * $# + 60)) dotnet "$HARNESS_DLL" speedtest --mode download --streams 1 \
    --payload-size "$PAYLOAD" --duration "${seconds}s" --warm-up 2s --repeat "$reps" "${args[@]}" --json "$json" \
    >"${json%.json}.log" 2>&1 || true
  [[ -s "$json" ]] || { log "speedtest: no result ($(tail -n 2 "${json%.json}.log" | tr '\n' ' '))"; return 0; }
  jq -r '.summary[] | "\(.label) \(.mbps * 1000000 / 8 / 1048576) \(.failures)"' "$json"
}

# rate OUT.json URL → "p50 p99 failed requests"
latency() {
  local json="$1" url="$2"
  timeout $((LATENCY_SECONDS + 120)) dotnet "$HARNESS_DLL" rate --url "$url" --rps "$LATENCY_RPS" \
    --duration "${LATENCY_SECONDS}s" --warm-up 2s --live off --threshold 'http_req_failed:rate==0' --json "$json" \
    >"${json%.json}.log" 2>&1 || true
  if [[ -s "$json" ]]; then
    jq -r '.targetTotals[0] | "\(.latency.p50Ms) \(.latency.p99Ms) \(.failed) \(.requests)"' "$json"
  else
    echo "- - - -"
  fi
}

# VALUE with 3 significant digits at most (100+: none after the point, 10+: one, else two); "–" when there is none.
fmt_sig() { awk -v v="$1" 'BEGIN { if (v == "" || v == "-") print "–"; else if (v >= 100) printf "%.0f", v; else if (v >= 10) printf "%.1f", v; else printf "%.2f", v }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "–"; else printf "%.0f %%", a / b * 100 }'; }

# ---------------------------------------------------------------------------------------------------- start
for port in "$SERVER_PORT" "$BACKEND_PORT" "$PROXY_TUNNEL_PORT" "$PROXY_RAW_PORT"; do require_free "$port"; done
start TestBackend "$BACKEND_DIR" -- dotnet TestBackend.dll --urls "$BACKEND_URL"
wait_ready TestBackend "$BACKEND_URL/loadtest/ping"
start_proxy proxy-raw "127.0.0.1:$BACKEND_PORT" "$PROXY_RAW_PORT"
RAW_PROXY_PID=$LAST_PID
start_proxy proxy-tunnel "127.0.0.1:$SERVER_PORT" "$PROXY_TUNNEL_PORT"
wait_ready proxy-raw "$RAW_URL/loadtest/ping" "$RAW_PROXY_PID"
start_tunnel
log "TestBackend $BACKEND_URL, raw proxy $RAW_URL, tunnel $SERVER_URL via proxy :$PROXY_TUNNEL_PORT; run folder $RUN_DIR"

declare -A RESULT=()
for row in "${ROWS[@]}"; do
  set_impairment "$row"
  log "row $(row_spec "$row" | cut -d'|' -f1): toxics $TOXICS"
  RESULT[$row,toxics]="$TOXICS"
  while read -r label mibs failures; do
    RESULT[$row,$label]="$mibs"
    RESULT[$row,$label,failed]="$failures"
  done < <(speed "$RUN_DIR/raw/speed-$row.json" "raw=$RAW_URL/loadtest/bytes/{size}" "tunnel=$TUNNEL_BASE/loadtest/bytes/{size}")
  log "  download MiB/s: raw $(fmt_sig "${RESULT[$row,raw]:-}"), tunnel $(fmt_sig "${RESULT[$row,tunnel]:-}")"
  read -r p50 p99 failed requests < <(latency "$RUN_DIR/raw/rate-$row-raw.json" "$RAW_URL/loadtest/get")
  RESULT[$row,raw,p50]=$p50; RESULT[$row,raw,p99]=$p99; RESULT[$row,raw,lfail]="$failed/$requests"
  read -r p50 p99 failed requests < <(latency "$RUN_DIR/raw/rate-$row-tunnel.json" "$TUNNEL_BASE/loadtest/get")
  RESULT[$row,tunnel,p50]=$p50; RESULT[$row,tunnel,p99]=$p99; RESULT[$row,tunnel,lfail]="$failed/$requests"
  log "  GET p50/p99 ms: raw ${RESULT[$row,raw,p50]}/${RESULT[$row,raw,p99]}, tunnel ${RESULT[$row,tunnel,p50]}/${RESULT[$row,tunnel,p99]}"
done

log "restarting the tunnel with ${SMALL_WINDOW}-byte stream windows on both sides"
stop_pid TunnelClient "$CLIENT_PID"
stop_pid TunnelServer "$SERVER_PID"
start_tunnel Tunnel__Limits__InitialStreamWindowSize=$SMALL_WINDOW Tunnel__Limits__MaxStreamWindowSize=$SMALL_WINDOW
for row in "${ROWS[@]}"; do
  set_impairment "$row"
  while read -r label mibs failures; do
    RESULT[$row,$label]="$mibs"
    RESULT[$row,$label,failed]="$failures"
  done < <(speed "$RUN_DIR/raw/speed-$row-small.json" "tunnel64k=$TUNNEL_BASE/loadtest/bytes/{size}")
  log "row $(row_spec "$row" | cut -d'|' -f1): 64 KiB window $(fmt_sig "${RESULT[$row,tunnel64k]:-}") MiB/s"
done
close_controls
stop_all
LOAD_AFTER="$(load_average)"

# ---------------------------------------------------------------------------------------------------- table
{
  echo "Measured $(date -u +%Y-%m-%d) with \`tunnel2-load-tests/scripts/impairment.sh --seconds $seconds --reps $reps --rows $rows --buffer-size $buffer_size\`"
  echo "on $(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)),"
  echo "load average $LOAD_BEFORE before and $LOAD_AFTER after; everything on one machine (generator, TestBackend, two FaultProxies, TunnelServer, TunnelClient)."
  echo "Run folder: \`artifacts/impairment/$(basename "$RUN_DIR")\`."
  echo
  echo "| RTT added | raw TCP, 1 stream (MiB/s) | tunnel, auto window (MiB/s) | tunnel ÷ raw | tunnel, 64 KiB window (MiB/s) | 64 KiB ÷ raw | GET p50 / p99 raw (ms) | GET p50 / p99 tunnel (ms) | failed GETs raw / tunnel |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
  for row in "${ROWS[@]}"; do
    raw="${RESULT[$row,raw]:-}"; tunnel="${RESULT[$row,tunnel]:-}"; small="${RESULT[$row,tunnel64k]:-}"
    echo "| $(row_spec "$row" | cut -d'|' -f1) | $(fmt_sig "$raw") | $(fmt_sig "$tunnel") | $(pct "$tunnel" "$raw") | $(fmt_sig "$small") | $(pct "$small" "$raw") | $(fmt_sig "${RESULT[$row,raw,p50]}") / $(fmt_sig "${RESULT[$row,raw,p99]}") | $(fmt_sig "${RESULT[$row,tunnel,p50]}") / $(fmt_sig "${RESULT[$row,tunnel,p99]}") | ${RESULT[$row,raw,lfail]} / ${RESULT[$row,tunnel,lfail]} |"
  done
  echo
  echo "MiB/s: medians of $reps alternated runs of ${seconds} s each (after a 2 s unmeasured warm-up), one stream, one"
  echo "$PAYLOAD request (\`/loadtest/bytes/{size}\`), bytes counted as they arrive. GETs: \`/loadtest/get\`, $LATENCY_RPS requests/s open"
  echo "loop for $LATENCY_SECONDS s (after 2 s of warm-up), latency from the intended start (coordinated omission corrected)."
  echo
  echo "Commands (ports as in the script):"
  echo
  echo '```bash'
  echo "dotnet FaultProxy.dll --target 127.0.0.1:$BACKEND_PORT --listen 127.0.0.1:$PROXY_RAW_PORT --buffer-size $buffer_size --seed 1   # raw"
  echo "dotnet FaultProxy.dll --target 127.0.0.1:$SERVER_PORT --listen 127.0.0.1:$PROXY_TUNNEL_PORT --buffer-size $buffer_size --seed 1   # uplinks"
  echo "#   per row, on both proxies' standard input: both latency=<RTT/2>ms jitter=<jitter/2>ms   (RTT 0: both clear)"
  echo "Tunnel__Server=http://127.0.0.1:$PROXY_TUNNEL_PORT dotnet TunnelClient.dll   # plus the row's Tunnel__Limits__* for the 64 KiB rows (server too)"
  echo "dotnet LoadTests.dll speedtest --mode download --streams 1 --payload-size $PAYLOAD --duration ${seconds}s --warm-up 2s --repeat $reps \\"
  echo "  --url raw=$RAW_URL/loadtest/bytes/{size} --url tunnel=$TUNNEL_BASE/loadtest/bytes/{size}"
  echo "dotnet LoadTests.dll rate --url $RAW_URL/loadtest/get --rps $LATENCY_RPS --duration ${LATENCY_SECONDS}s --warm-up 2s   # and the tunnel URL"
  echo '```'
} >"$RUN_DIR/table.md"
cat "$RUN_DIR/table.md"

if ((write_doc)); then
  { echo "<!-- impairment:begin -->"; cat "$RUN_DIR/table.md"; echo "<!-- impairment:end -->"; } >"$RUN_DIR/section.md"
  if replace_section "$REPO_ROOT/docs/reliability.md" "$RUN_DIR/section.md" "<!-- impairment:begin -->" "<!-- impairment:end -->"; then
    log "table written into docs/reliability.md"
  else
    log "docs/reliability.md has no <!-- impairment:begin/end --> markers; table left in $RUN_DIR/table.md"
  fi
fi
log "done: $RUN_DIR/table.md"
