#!/usr/bin/env bash
# Soak: steady mixed load through the tunnel while the TunnelClient is SIGKILLed and restarted every N seconds.
# Every response is checked (ok, clear error, or BAD); the server's RSS, descriptors and sockets are sampled each
# second; at the end: requests ok/error/BAD, the error window of each kill, resources at the start (after the
# warm-up) vs the end, a Markdown summary under artifacts/soak/<timestamp>/, and a verdict.
#
#   tunnel2-load-tests/scripts/soak.sh [--minutes 30] [--kill-every 30s] [options]
#
# Options:
#   --minutes N       length of the load (default 30; decimals allowed, e.g. 0.5).
#   --kill-every T    SIGKILL the client every T (default 30s; 0 = never), then start a new one at once.
#   --rps R           open-loop requests per second (default 50).
#   --warm-up T       resources compared only after T (default 120s, or a fifth of the run when shorter).
#   --tolerance P     allowed change of RSS, descriptors and sockets, start vs end, in percent (default 10).
#   --no-build        use the existing Release binaries.
#   -h, --help        this text.
# Environment: TUNNEL2_SOAK_BACKEND_PORT (12107), TUNNEL2_SOAK_TUNNEL_PORT (12100): ports of its own, so a soak can
# run beside the load stack on 12000/12007.
#
# Exit code: 0 PASS; 99 FAIL (a BAD response, an error away from any kill, resource drift beyond the tolerance, or
# a client that never came back); 130 interrupted; 1 when the script itself failed (tool missing, port in use,
# a process not ready); 2 when the harness could not reach the tunnel.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BACKEND_PORT="${TUNNEL2_SOAK_BACKEND_PORT:-12107}"
TUNNEL_PORT="${TUNNEL2_SOAK_TUNNEL_PORT:-12100}"
BACKEND_URL="http://127.0.0.1:$BACKEND_PORT"
TUNNEL_URL="http://127.0.0.1:$TUNNEL_PORT"
SESSION_URL="$TUNNEL_URL/session/$SESSION"
READY_ATTEMPTS=100     # × 0.2 s for a process to become ready
READY_INTERVAL=0.2
READY_CURL_TIMEOUT=5
READY_TAIL=20
HARNESS_STOP_ATTEMPTS=80  # × 0.5 s: a stopped harness lets in-flight requests finish, then writes its summary
LOG_TIME=1
START_LOG=none
STOP_LOG=0
INTERRUPT_MESSAGE="interrupted; stopping everything this script started"

# ---------------------------------------------------------------------------------------------------- arguments
minutes=30
kill_every=30
rps=50
warm_up=""
tolerance=10
build=1
seconds_of() { # 30s | 2m | 500ms | 30 -> whole seconds (ms rounded up)
  local v="$1"
  case "$v" in
    *ms) echo $(( (${v%ms} + 999) / 1000 )) ;;
    *s) echo "${v%s}" ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *) echo "$v" ;;
  esac
}
while (($#)); do
  case "$1" in
    --minutes) shift; minutes="${1:?--minutes needs a value}" ;;
    --kill-every) shift; kill_every="$(seconds_of "${1:?--kill-every needs a value}")" ;;
    --rps) shift; rps="${1:?--rps needs a value}" ;;
    --warm-up) shift; warm_up="$(seconds_of "${1:?--warm-up needs a value}")" ;;
    --tolerance) shift; tolerance="${1:?--tolerance needs a value}" ;;
    --no-build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done
[[ "$minutes" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--minutes must be a number"
[[ "$kill_every" =~ ^[0-9]+$ ]] || die "--kill-every must be a duration like 30s"
duration_s=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
((duration_s >= 10)) || die "--minutes must be at least 10 seconds' worth"
if [[ -z "$warm_up" ]]; then
  warm_up=$((duration_s / 5 < 120 ? duration_s / 5 : 120))
fi

# ---------------------------------------------------------------------------------------------------- tools, build
command -v dotnet >/dev/null || die "dotnet not found"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
command -v ss >/dev/null || die "ss not found (apt-get install iproute2)"
cd "$REPO_ROOT"
if ((build)); then
  build_projects src/TunnelServer/TunnelServer.csproj src/TunnelClient/TunnelClient.csproj \
    tunnel2-load-tests/TestBackend/TestBackend.csproj tunnel2-load-tests/LoadTests/LoadTests.csproj
fi
BACKEND_DIR=tunnel2-load-tests/TestBackend/bin/Release/net10.0
SERVER_DIR=src/TunnelServer/bin/Release/net10.0
CLIENT_DIR=src/TunnelClient/bin/Release/net10.0
HARNESS_DLL="$REPO_ROOT/tunnel2-load-tests/LoadTests/bin/Release/net10.0/LoadTests.dll"
for f in "$BACKEND_DIR/TestBackend.dll" "$SERVER_DIR/TunnelServer.dll" "$CLIENT_DIR/TunnelClient.dll" "$HARNESS_DLL"; do
  [[ -f "$f" ]] || die "$f missing (build first, or drop --no-build)"
done

RUN_DIR="$(new_run_dir "$REPO_ROOT/artifacts/soak" "$(date -u +%Y%m%d-%H%M%S)")"
mkdir -p "$RUN_DIR/logs"
LOG_DIR="$RUN_DIR/logs"
KILLS="$RUN_DIR/kills.tsv"
SAMPLES="$RUN_DIR/samples.tsv"

# ---------------------------------------------------------------------------------------------------- processes
SAMPLER_PID=""
HARNESS_PID=""
CLIENT_PID=""
CLIENT_STARTS=0
# shellcheck disable=SC2317  # called from on_exit
cleanup_first() {
  stop_pid sampler "$SAMPLER_PID"; SAMPLER_PID=""
  stop_pid LoadTests "$HARNESS_PID" "$HARNESS_STOP_ATTEMPTS"; HARNESS_PID=""
}
install_traps

now_ms() { local t="${EPOCHREALTIME/[.,]/}"; echo "${t:0:13}"; }

# Until the tunnel answers through the new client; 1 if it has not after READY_ATTEMPTS or the client died.
client_ready() {
  local n
  for ((n = 0; n < READY_ATTEMPTS; n++)); do
    if curl --noproxy '*' -fsS -o /dev/null --max-time 5 "$SESSION_URL/loadtest/ping" 2>/dev/null; then return 0; fi
    kill -0 "$CLIENT_PID" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

start_client() {
  # Development: the dev token and session; the server, backend and routes moved to this script's ports; no status port.
  start TunnelClient "$CLIENT_DIR" DOTNET_ENVIRONMENT=Development \
    Tunnel__Server="$TUNNEL_URL" Tunnel__Backend="$BACKEND_URL" "Tunnel__Routes__/loadtest=$BACKEND_URL" Tunnel__StatusUrl= \
    -- dotnet TunnelClient.dll
  CLIENT_PID=$LAST_PID
  CLIENT_STARTS=$((CLIENT_STARTS + 1))
}

require_free "$BACKEND_PORT"
require_free "$TUNNEL_PORT"
start TestBackend "$BACKEND_DIR" -- dotnet TestBackend.dll --urls "$BACKEND_URL"
wait_ready TestBackend "$BACKEND_URL/loadtest/ping" "$LAST_PID"
dev_grant_env
start TunnelServer "$SERVER_DIR" "${DEV_GRANT_ENV[@]}" -- dotnet TunnelServer.dll --urls "$TUNNEL_URL"
SERVER_PID=$LAST_PID
wait_ready TunnelServer "$TUNNEL_URL/healthz" "$SERVER_PID"
start_client
wait_ready TunnelClient "$SESSION_URL/loadtest/ping" "$CLIENT_PID"
log "TestBackend $BACKEND_URL, TunnelServer $TUNNEL_URL (PID $SERVER_PID), TunnelClient PID $CLIENT_PID; run folder $RUN_DIR"

# ---------------------------------------------------------------------------------------------------- sampler
# Once a second, of the server: its RSS (VmRSS, and its anonymous, file-backed and shared parts: mapped code pages
# touched for the first time show up as file-backed growth, a heap leak as anonymous growth); its thread count (each
# thread brings a stack and, in glibc, possibly a malloc arena: anonymous memory outside the GC); what the GC has
# committed and what its heap held at the last collection (from /metrics: the GC's part of the anonymous memory, and
# how much of that is live); its descriptors, split into sockets and everything else; its TCP sockets (established,
# any state) and, of those, the ones without a live peer: not ESTABLISHED (CLOSE-WAIT, FIN-WAIT…), or established to a
# loopback port no socket holds any more. How many connections the load generator keeps open moves with its latency
# (21 to 181 over one run), so the raw counts are reported, and leaks are judged on the unpaired sockets and the
# non-socket descriptors.
sample_loop() {
  printf 'unix_ms\trss_kb\tfds\ttcp_estab\ttcp_all\trss_anon_kb\trss_file_kb\trss_shmem_kb\tgc_committed_kb\tgc_heap_kb\tfds_other\ttcp_unpaired\tthreads\n'
  local rss fds socket_fds tcp parts gc threads
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo "")
    parts=$(awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } /^RssShmem:/ { s = $2 } END { printf "%s\t%s\t%s", a, f, s }' "/proc/$SERVER_PID/status" 2>/dev/null || echo "")
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo "")
    # One listing of the descriptors: all of them, and those that are sockets.
    read -r fds socket_fds < <(find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null \
      | awk '{ n++ } /^socket:/ { s++ } END { printf "%d %d\n", n, s }')
    # One ss snapshot: established pairs of every process, then the server's sockets checked against them.
    tcp=$(ss -Htanp 2>/dev/null | awk -v pid="pid=$SERVER_PID," '
      { gsub(/\[::ffff:|\]/, "", $4); gsub(/\[::ffff:|\]/, "", $5) }   # dual-stack sockets: [::ffff:127.0.0.1]:port
      $1 == "ESTAB" { pair[$4 " " $5] = 1 }
      index($0, pid) { mine[++n] = $1 " " $4 " " $5 }
      END {
        for (i = 1; i <= n; i++) {
          split(mine[i], f, " ")
          all++
          if (f[1] == "ESTAB") { estab++; if (!((f[3] " " f[2]) in pair)) unpaired++ }
          else if (f[1] != "LISTEN") unpaired++
        }
        printf "%d\t%d\t%d", estab, all, unpaired
      }' || echo "")
    gc=$(curl --noproxy '*' -fsS --max-time 1 "$TUNNEL_URL/metrics" 2>/dev/null \
      | awk '/^tunnel2_gc_committed_bytes / { c = $2 } /^tunnel2_gc_heap_bytes / { h = $2 } END { if (c != "") printf "%d\t%d", c / 1024, h / 1024 }' || true)
    [[ -n "$rss" && -n "$tcp" ]] && printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(now_ms)" "$rss" "$fds" "$(cut -f1,2 <<<"$tcp")" "$parts" "${gc:-$'\t'}" "$((fds - socket_fds))" "$(cut -f3 <<<"$tcp")" "$threads"
    sleep 1
  done
}
sample_loop >"$SAMPLES" 2>/dev/null &
SAMPLER_PID=$!

# ---------------------------------------------------------------------------------------------------- load
printf '# event\tunix_ms\tpid\n' >"$KILLS"
log "load: $rps RPS for ${duration_s}s, kill every ${kill_every}s, warm-up ${warm_up}s, tolerance ±$tolerance %"
dotnet "$HARNESS_DLL" soak --url "$SESSION_URL/" --rps "$rps" --duration "${duration_s}s" \
  --kill-log "$KILLS" --samples "$SAMPLES" --warm-up "${warm_up}s" --tolerance "$tolerance" --out "$RUN_DIR" \
  >"$RUN_DIR/logs/LoadTests.log" 2>&1 &
HARNESS_PID=$!
load_start=$(now_ms)

# ---------------------------------------------------------------------------------------------------- kills
# Kill n happens at load start + n × kill_every, while the load still has more than kill_every/2 to go.
deadline_ms=$((load_start + (duration_s + 120) * 1000))
next_kill=1
while kill -0 "$HARNESS_PID" 2>/dev/null; do
  now=$(now_ms)
  ((now < deadline_ms)) || { log "the harness overran its time; stopping it"; stop_pid LoadTests "$HARNESS_PID" "$HARNESS_STOP_ATTEMPTS"; break; }
  kill_at=$((load_start + next_kill * kill_every * 1000))
  if ((kill_every > 0 && kill_at + kill_every * 500 < load_start + duration_s * 1000 && now >= kill_at)); then
    old_pid="$CLIENT_PID"
    printf 'kill\t%s\t%s\n' "$(now_ms)" "$old_pid" >>"$KILLS"
    kill -KILL "$old_pid" 2>/dev/null || true
    wait "$old_pid" 2>/dev/null || true
    start_client
    if ! client_ready; then
      # The harness reports the kill as "never answered again"; stop the load instead of timing out every request.
      log "kill $next_kill: the new client ($CLIENT_PID) never made the tunnel answer; stopping the load"
      tail -n 20 "$RUN_DIR/logs/TunnelClient.log" >&2
      stop_pid LoadTests "$HARNESS_PID" "$HARNESS_STOP_ATTEMPTS"
      break
    fi
    printf 'ready\t%s\t%s\n' "$(now_ms)" "$CLIENT_PID" >>"$KILLS"
    log "kill $next_kill: client $old_pid killed, $CLIENT_PID answering"
    next_kill=$((next_kill + 1))
    continue
  fi
  sleep 0.2
done

harness_code=0
if [[ -n "$HARNESS_PID" ]]; then
  wait "$HARNESS_PID" || harness_code=$?
  HARNESS_PID=""
fi
stop_pid sampler "$SAMPLER_PID"
SAMPLER_PID=""

# ---------------------------------------------------------------------------------------------------- report
{
  echo "# Soak run $(basename "$RUN_DIR")"
  echo
  echo "Command: \`tunnel2-load-tests/scripts/soak.sh --minutes $minutes --kill-every ${kill_every}s --rps $rps --warm-up ${warm_up}s --tolerance $tolerance\`"
  echo
  echo "Machine: $(nproc) vCPU, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Processes: TestBackend $BACKEND_URL, TunnelServer $TUNNEL_URL (Production, dev grant from the environment), TunnelClient (Development, 2 uplinks), started $CLIENT_STARTS time(s)."
  echo "Files: kills.tsv, samples.tsv (server RSS/descriptors/sockets each second), errors.tsv, seconds.tsv, summary.json, logs/."
  echo
  if [[ -f "$RUN_DIR/summary.md" ]]; then cat "$RUN_DIR/summary.md"; else echo "The harness wrote no summary (exit code $harness_code); see logs/LoadTests.log."; fi
} >"$RUN_DIR/soak.md"
if [[ -f "$RUN_DIR/summary.md" ]]; then cat "$RUN_DIR/summary.md"; else tail -n 20 "$RUN_DIR/logs/LoadTests.log"; fi
case "$harness_code" in
  0) verdict=PASS ;;
  99) verdict="FAIL (see the summary)" ;;
  130) verdict="FAIL (interrupted)" ;;
  *) verdict="FAIL (harness exit code $harness_code)" ;;
esac
log "summary: $RUN_DIR/soak.md"
log "verdict: $verdict"
exit "$harness_code"
