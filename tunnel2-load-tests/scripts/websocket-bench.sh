#!/usr/bin/env bash
# N concurrent WebSockets directly against TestBackend's /loadtest/ws echo and through the tunnel (LoadTests ws), with
# the peak memory and socket count of each process, then one Markdown table; with --doc it goes into
# docs/performance.md between <!-- websocket:begin --> and <!-- websocket:end --> (appended at the end when the markers
# are absent; nothing else in the file changes).
#
#   tunnel2-load-tests/scripts/websocket-bench.sh [options]
#
# Runs, one after another (never at the same time): direct, then the tunnel once per TunnelClient setting of
# --client-limits (the client is restarted with Tunnel__MaxConcurrentRequests for each).
#
# Options:
#   --sockets N        concurrent WebSockets (default 1000)
#   --rate R           messages per second per socket, random phase (default 1)
#   --duration D       how long the sockets send after connecting (default 30s)
#   --message-size B   bytes per message (default 64)
#   --client-limits L  comma-separated TunnelClient MaxConcurrentRequests values, "default" for the product default
#                      (default "default,2000")
#   --no-build         use the existing Release binaries
#   --doc              write the section into docs/performance.md
#   -h, --help         this text
# Environment: TUNNEL2_BACKEND_PORT (12007), TUNNEL2_TUNNEL_PORT (12000) move the ports.
#
# Everything runs on 127.0.0.1; everything started is stopped on exit, also on Ctrl-C. Artifacts (JSON of every run,
# per-second resource samples, logs, the section): artifacts/websocket/<timestamp>/.
# Exit code: 0 when every run ran (failures inside a run are reported, not fatal), 1 when the script failed, 130 when
# interrupted.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BACKEND_PORT="${TUNNEL2_BACKEND_PORT:-12007}"
TUNNEL_PORT="${TUNNEL2_TUNNEL_PORT:-12000}"
DOC="$REPO_ROOT/docs/performance.md"
BEGIN_MARK="<!-- websocket:begin -->"
END_MARK="<!-- websocket:end -->"
PORT_IN_USE="port {port} is in use (move it with the environment variables above)"
STOP_CHILDREN=1     # a sampler's sleep, a probe's curl

sockets=1000
rate=1
duration=30s
message_size=64
client_limits="default,2000"
build=1
doc=0
while (($#)); do
  case "$1" in
    --sockets) shift; sockets="${1:?--sockets needs a value}" ;;
    --rate) shift; rate="${1:?--rate needs a value}" ;;
    --duration) shift; duration="${1:?--duration needs a value}" ;;
    --message-size) shift; message_size="${1:?--message-size needs a value}" ;;
    --client-limits) shift; client_limits="${1:?--client-limits needs a value}" ;;
    --no-build) build=0 ;;
    --doc) doc=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done

command -v dotnet >/dev/null || die "dotnet not found: install the .NET 10 SDK"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
cd "$REPO_ROOT"
if ((build)); then
  build_projects tunnel2-load-tests/TestBackend/TestBackend.csproj src/TunnelServer/TunnelServer.csproj \
    src/TunnelClient/TunnelClient.csproj tunnel2-load-tests/LoadTests/LoadTests.csproj
fi

RUN_DIR="$(new_run_dir "$REPO_ROOT/artifacts/websocket" "$(date -u +%Y%m%d-%H%M%S)")"
mkdir -p "$RUN_DIR/logs" "$RUN_DIR/raw"
LOG_DIR="$RUN_DIR/logs"
snapshot tunnel2-load-tests/TestBackend/bin/Release/net10.0 "$RUN_DIR/backend" >/dev/null
snapshot src/TunnelServer/bin/Release/net10.0 "$RUN_DIR/server" >/dev/null
snapshot src/TunnelClient/bin/Release/net10.0 "$RUN_DIR/client" >/dev/null
snapshot tunnel2-load-tests/LoadTests/bin/Release/net10.0 "$RUN_DIR/harness" >/dev/null
HARNESS=(dotnet "$RUN_DIR/harness/LoadTests.dll")

# A socket per WebSocket in the generator, two in TunnelServer's and TunnelClient's view, one in TestBackend's.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "open-file limit: $(ulimit -n)"

# ---------------------------------------------------------------------------------------------------- processes
SAMPLER_PID=""
PROBE_PID=""
# shellcheck disable=SC2317  # called from on_exit
cleanup_first() {
  STOP_LOG=0 stop_pid sampler "$SAMPLER_PID"
  STOP_LOG=0 stop_pid probe "$PROBE_PID"
}
install_traps

# Each second: name, RSS (KiB), open sockets and threads of each watched process, until killed.
sample() { # out name=pid...
  local out="$1"; shift
  while true; do
    local spec name pid rss socks threads
    for spec in "$@"; do
      name="${spec%%=*}"; pid="${spec#*=}"
      [[ -d "/proc/$pid" ]] || continue
      rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
      threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
      socks=$(find "/proc/$pid/fd" -lname 'socket:*' 2>/dev/null | wc -l)
      printf '%s\t%s\t%s\t%s\n' "$name" "${rss:-0}" "$socks" "${threads:-0}"
    done >>"$out"
    sleep 1
  done
}
# Every 5 s one plain GET through the same path (curl, 20 s cap): does other traffic still get through?
probe() { # out url
  while true; do
    curl -s -o /dev/null --max-time 20 -w '%{http_code}\t%{time_total}\n' "$2" >>"$1" || true
    sleep 5
  done
}
start_sampler() { sample "$@" & SAMPLER_PID=$!; }
stop_sampler() { STOP_LOG=0 stop_pid sampler "$SAMPLER_PID"; SAMPLER_PID=""; }
start_probe() { probe "$@" & PROBE_PID=$!; }
stop_probe() { STOP_LOG=0 stop_pid probe "$PROBE_PID"; PROBE_PID=""; }
probes() { # file → "12 × 200 (max 0.01 s)" or "—"
  [[ -s "$1" ]] || { echo "—"; return; }
  awk -F'\t' '{ n[$1]++; if ($2 > m) m = $2 } END { s = ""; for (c in n) s = s (s ? ", " : "") n[c] " × " (c == "000" ? "no answer in 20 s" : c); printf "%s (slowest %.2f s)", s, m }' "$1"
}
peaks() { # file name → "peak RSS MiB / peak sockets / peak threads"
  awk -F'\t' -v n="$2" '$1 == n { if ($2 > r) r = $2; if ($3 > s) s = $3; if ($4 > t) t = $4; seen = 1 }
    END { if (seen) printf "%.0f MiB / %d / %d", r / 1024, s, t; else print "—" }' "$1"
}

require_free "$BACKEND_PORT"; require_free "$TUNNEL_PORT"
start TestBackend "$RUN_DIR/backend" -- dotnet TestBackend.dll --urls "http://127.0.0.1:$BACKEND_PORT"
BACKEND_PID=$LAST_PID
wait_ready TestBackend "http://127.0.0.1:$BACKEND_PORT/loadtest/ping"

dev_grant_env
start TunnelServer "$RUN_DIR/server" "${DEV_GRANT_ENV[@]}" -- dotnet TunnelServer.dll --urls "http://127.0.0.1:$TUNNEL_PORT"
SERVER_PID=$LAST_PID
wait_ready TunnelServer "http://127.0.0.1:$TUNNEL_PORT/healthz"

LOAD_START="$(load_average)"
STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"
T0=$SECONDS
common=(--sockets "$sockets" --rate "$rate" --duration "$duration" --message-size "$message_size")
jsons=()
RESOURCES="$RUN_DIR/resources.md"
{
  echo "| Run | TestBackend | TunnelServer | TunnelClient | LoadTests (generator) | Plain GET /loadtest/get every 5 s, same path |"
  echo "|---|---|---|---|---|---|"
} >"$RESOURCES"

run_harness() { # label url probe-url sample-specs...
  local label="$1" url="$2" probe_url="$3"; shift 3
  local slug="${label//[^a-zA-Z0-9]/-}"
  local samples="$RUN_DIR/raw/$slug-resources.tsv"
  log "── $label: $url"
  "${HARNESS[@]}" ws --url "$label=$url" "${common[@]}" --json "$RUN_DIR/raw/$slug.json" \
    >"$RUN_DIR/logs/harness-$slug.log" 2>&1 &
  local harness_pid=$!
  start_sampler "$samples" "$@" "LoadTests=$harness_pid"
  start_probe "$RUN_DIR/raw/$slug-probe.tsv" "$probe_url"
  local code=0
  wait "$harness_pid" || code=$?
  stop_probe
  stop_sampler
  tail -n 25 "$RUN_DIR/logs/harness-$slug.log"
  ((code == 0 || code == 99)) || die "the harness failed (exit $code): $RUN_DIR/logs/harness-$slug.log"
  jsons+=(--json "$RUN_DIR/raw/$slug.json")
  echo "| $label | $(peaks "$samples" TestBackend) | $(peaks "$samples" TunnelServer) | $(peaks "$samples" TunnelClient) | $(peaks "$samples" LoadTests) | $(probes "$RUN_DIR/raw/$slug-probe.tsv") |" >>"$RESOURCES"
}

run_harness direct "ws://127.0.0.1:$BACKEND_PORT/loadtest/ws" "http://127.0.0.1:$BACKEND_PORT/loadtest/get" "TestBackend=$BACKEND_PID"

IFS=',' read -r -a limits <<<"$client_limits"
for limit in "${limits[@]}"; do
  client_env=(DOTNET_ENVIRONMENT=Development Tunnel__StatusUrl=)
  label="tunnel (client MaxConcurrentRequests 512, the default)"
  if [[ "$limit" != default ]]; then
    client_env+=("Tunnel__MaxConcurrentRequests=$limit")
    label="tunnel (client MaxConcurrentRequests $limit)"
  fi
  start TunnelClient "$RUN_DIR/client" "${client_env[@]}" \
    -- dotnet TunnelClient.dll --server "http://127.0.0.1:$TUNNEL_PORT" --backend "http://127.0.0.1:$BACKEND_PORT"
  CLIENT_PID=$LAST_PID
  wait_ready TunnelClient "http://127.0.0.1:$TUNNEL_PORT/session/$SESSION/loadtest/ping"
  run_harness "$label" "ws://127.0.0.1:$TUNNEL_PORT/session/$SESSION/loadtest/ws" \
    "http://127.0.0.1:$TUNNEL_PORT/session/$SESSION/loadtest/get" "TestBackend=$BACKEND_PID" "TunnelServer=$SERVER_PID" "TunnelClient=$CLIENT_PID"
  stop_pid TunnelClient "$CLIENT_PID"
done
LOAD_END="$(load_average)"
ELAPSED=$((SECONDS - T0))

# ---------------------------------------------------------------------------------------------------- report
"${HARNESS[@]}" ws report "${jsons[@]}" --markdown "$RUN_DIR/table.md" >/dev/null
MACHINE="$(machine_info)"
DOTNET_VERSION="$(dotnet_runtime_version)"
commit_info
SECTION="$RUN_DIR/section.md"
{
  echo "$BEGIN_MARK"
  echo "<!-- Generated by tunnel2-load-tests/scripts/websocket-bench.sh; edit outside the markers. -->"
  echo "## $sockets concurrent WebSockets (LoadTests ws)"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| Date | $STARTED (runs took ${ELAPSED} s) |"
  echo "| Machine | $MACHINE |"
  echo "| Load average (1/5/15 min) | $LOAD_START at the start, $LOAD_END at the end |"
  echo "| Software | .NET $DOTNET_VERSION; commit $COMMIT$DIRTY |"
  echo "| Command | \`LoadTests ws --url <label>=<url> --sockets $sockets --rate $rate --duration $duration --message-size $message_size\` (connects 100 at a time, 10 s connect timeout) |"
  echo "| Direct | \`ws://127.0.0.1:$BACKEND_PORT/loadtest/ws\` (TestBackend: Kestrel MaxConcurrentUpgradedConnections 10,000) |"
  echo "| Tunnel | \`ws://127.0.0.1:$TUNNEL_PORT/session/<id>/loadtest/ws\`: TunnelServer (Production, Kestrel defaults: no upgraded-connection limit) → 2 uplinks → TunnelClient → TestBackend; the client's MaxConcurrentRequests as named in each column |"
  echo
  cat "$RUN_DIR/table.md"
  echo
  echo "Peak RSS / open sockets / threads of each process during each run (sampled every second), and what a plain"
  echo "request on the same path got meanwhile:"
  echo
  cat "$RESOURCES"
  echo "$END_MARK"
} >"$SECTION"
cat "$SECTION"

if ((doc)); then
  write_doc_section "$DOC" "$SECTION" "$BEGIN_MARK" "$END_MARK"
  log "wrote $DOC"
fi
log "artifacts: $RUN_DIR"
