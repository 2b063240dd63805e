#!/usr/bin/env bash
# Scale-out on one machine: 1, 2 and 3 TunnelServer nodes sharing a Redis session directory, one TunnelClient whose
# uplinks all go to node 1, and the load spread evenly over every node's public URL, so that the requests entering at
# nodes 2..N are forwarded to node 1 (docs/adr/0007-scale-out-directory.md). Per node count it measures
#
#   closed loop  wrk -tN -c<connections> -d<seconds> --latency -s nodes.lua  (thread i → node i: the connections
#                split evenly over the nodes; wrk's one latency histogram covers all of them). Without wrk: N parallel
#                `LoadTests run` with a keepConstant profile (<connections>/N copies each).
#   open loop    N parallel `LoadTests rate --rps <rps>/N` (one per node, same start), CO-corrected latency; the
#                combined p50/p99 come from the per-node percentile curves (a mixture weighted by requests).
#   forwarded    Σ over the nodes of tunnel2_forwarded_requests_total (by outcome) ÷ Σ tunnel2_requests_total, from
#                every node's /metrics before and after each measurement.
#
# and writes one Markdown section; with --doc it goes into docs/performance.md between <!-- scaleout:begin --> and
# <!-- scaleout:end --> (appended at the end when the markers are absent; nothing else in the file changes).
#
# Everything shares this machine's cores (nodes, Redis, TunnelClient, TestBackend, the load generator): this measures
# what forwarding costs, not horizontal capacity.
#
#   tunnel2-load-tests/scripts/scale-out.sh [options]
#
# Options:
#   --nodes LIST        node counts to measure, comma separated (default 1,2,3; at most 9)
#   --rps R             open-loop rate over all nodes together (default 500)
#   --duration D        open-loop measured time, e.g. 20s (default 20s); warm-up --warm-up (default 3s)
#   --wrk-seconds S     closed-loop measured seconds (default 10; an unrecorded 3 s run goes first)
#   --connections C     closed-loop connections over all nodes (default 48: divisible by 1, 2 and 3)
#   --closed-loop TOOL  wrk or loadtests (default: wrk when installed)
#   --uplinks N         TunnelClient uplinks, all to node 1 (default 2, the product default)
#   --no-build          use the existing Release binaries
#   --doc               write the section into docs/performance.md
#   -h, --help          this text
# Environment: TUNNEL2_SCALEOUT_PORT (12400: node i listens on +i, TestBackend on +10), TUNNEL2_SCALEOUT_REDIS_PORT
# (12479).
#
# Installs redis-server (and curl, jq) from Debian when missing. Everything listens on 127.0.0.1 only; everything
# started is stopped on exit, also on Ctrl-C, and the whole run has a hard time cap. Artifacts:
# artifacts/scaleout/<timestamp>/ (raw wrk output, results JSON, metrics scrapes, logs, the section).
# Exit code: 0 when every measurement ran without a failed request, 99 when some requests failed (the table shows
# them), 1 when the script failed, 2 bad argument, 130 when interrupted or the time cap was reached.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
PORT_BASE="${TUNNEL2_SCALEOUT_PORT:-12400}"
REDIS_PORT="${TUNNEL2_SCALEOUT_REDIS_PORT:-12479}"
BACKEND_PORT=$((PORT_BASE + 10))
DOC="$REPO_ROOT/docs/performance.md"
BEGIN_MARK="<!-- scaleout:begin -->"
END_MARK="<!-- scaleout:end -->"
READY_LOG=1
PORT_IN_USE="port {port} is already in use ({owner}); move the ports with TUNNEL2_SCALEOUT_PORT / TUNNEL2_SCALEOUT_REDIS_PORT"
INTERRUPT_MESSAGE="interrupted (or the hard time cap was reached)"

bad_arg() { usage >&2; echo "scale-out: $*" >&2; exit 2; }

SCRIPT_ARGS="$*"
nodes_arg="1,2,3"
rps=500
duration=20s
warmup=3s
wrk_seconds=10
connections=48
closed_loop=""
uplinks=2
build=1
doc=0
while (($#)); do
  case "$1" in
    --nodes) shift; nodes_arg="${1:?--nodes needs a value}" ;;
    --rps) shift; rps="${1:?--rps needs a value}" ;;
    --duration) shift; duration="${1:?--duration needs a value}" ;;
    --warm-up) shift; warmup="${1:?--warm-up needs a value}" ;;
    --wrk-seconds) shift; wrk_seconds="${1:?--wrk-seconds needs a value}" ;;
    --connections) shift; connections="${1:?--connections needs a value}" ;;
    --closed-loop) shift; closed_loop="${1:?--closed-loop needs a value}" ;;
    --uplinks) shift; uplinks="${1:?--uplinks needs a value}" ;;
    --no-build) build=0 ;;
    --doc) doc=1 ;;
    -h|--help) usage; exit 0 ;;
    *) bad_arg "unknown argument '$1'" ;;
  esac
  shift
done

IFS=',' read -r -a NODE_COUNTS <<<"$nodes_arg"
MAX_NODES=0
for n in "${NODE_COUNTS[@]}"; do
  [[ "$n" =~ ^[1-9]$ ]] || bad_arg "--nodes takes counts from 1 to 9, e.g. 1,2,3 (got '$n')"
  ((n > MAX_NODES)) && MAX_NODES=$n
done
[[ "$rps" =~ ^[0-9]+([.][0-9]+)?$ ]] || bad_arg "--rps must be a number"
[[ "$wrk_seconds" =~ ^[1-9][0-9]*$ ]] || bad_arg "--wrk-seconds must be a whole number of seconds"
[[ "$connections" =~ ^[1-9][0-9]*$ ]] || bad_arg "--connections must be a positive number"
[[ "$uplinks" =~ ^[1-9][0-9]?$ ]] || bad_arg "--uplinks must be 1-16"
to_seconds() { # 20s, 1m, 500ms → seconds (integer, rounded up)
  awk -v d="$1" 'BEGIN { n = d + 0; u = d; gsub(/[0-9.]/, "", u)
    s = (u == "ms") ? n / 1000 : (u == "m") ? n * 60 : (u == "s" || u == "") ? n : -1
    if (s < 0) exit 1; printf "%d", (s == int(s)) ? s : int(s) + 1 }'
}
DURATION_S="$(to_seconds "$duration")" || bad_arg "--duration must look like 20s"
WARMUP_S="$(to_seconds "$warmup")" || bad_arg "--warm-up must look like 3s"
((DURATION_S > 0)) || bad_arg "--duration must be positive"
node_port() { echo $((PORT_BASE + $1)); }
node_url() { echo "http://127.0.0.1:$(node_port "$1")"; }

# ---------------------------------------------------------------------------------------------------- tools
CLK_TCK="$(getconf CLK_TCK)"
apt_install_missing redis-server redis-tools curl jq iproute2
command -v dotnet >/dev/null || die "dotnet not found: install the .NET 10 SDK"
if [[ -z "$closed_loop" ]]; then
  if command -v wrk >/dev/null; then closed_loop=wrk; else closed_loop=loadtests; log "wrk not installed: closed loop with LoadTests run (keepConstant)"; fi
fi
case "$closed_loop" in
  wrk) command -v wrk >/dev/null || die "--closed-loop wrk: wrk is not installed (apt-get install wrk)" ;;
  loadtests) ;;
  *) bad_arg "--closed-loop is wrk or loadtests" ;;
esac
for n in "${NODE_COUNTS[@]}"; do
  ((connections >= n)) || bad_arg "--connections must be at least the node count"
done

# ---------------------------------------------------------------------------------------------------- build
cd "$REPO_ROOT"
SERVER_DIR=src/TunnelServer/bin/Release/net10.0
CLIENT_DIR=src/TunnelClient/bin/Release/net10.0
BACKEND_DIR=tunnel2-load-tests/TestBackend/bin/Release/net10.0
HARNESS_DIR=tunnel2-load-tests/LoadTests/bin/Release/net10.0
if ((build)); then
  build_projects src/TunnelServer/TunnelServer.csproj src/TunnelClient/TunnelClient.csproj \
    tunnel2-load-tests/TestBackend/TestBackend.csproj tunnel2-load-tests/LoadTests/LoadTests.csproj
fi
for f in "$SERVER_DIR/TunnelServer.dll" "$CLIENT_DIR/TunnelClient.dll" "$BACKEND_DIR/TestBackend.dll" "$HARNESS_DIR/LoadTests.dll"; do
  [[ -f "$f" ]] || die "$f missing (build first, or drop --no-build)"
done
BUILD_INFO="TunnelServer.dll built $(date -u -r "$SERVER_DIR/TunnelServer.dll" '+%Y-%m-%d %H:%M UTC')"

ART="$REPO_ROOT/artifacts/scaleout/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$ART/logs" "$ART/raw" "$ART/metrics" "$ART/redis"
LOG_DIR="$ART/logs"
# A copy of the binaries (someone may rebuild bin/ during the run). The .NET processes start through links to their
# apphosts named t2-scaleout-*, so their command lines are told apart from any other copy running on this machine.
snapshot_linked() { snapshot "$2" "$ART/bin/$1" >/dev/null && ln -sf "$3" "$ART/bin/$1/t2-scaleout-$1" && echo "$ART/bin/$1"; }
SERVER_DIR="$(snapshot_linked node "$SERVER_DIR" TunnelServer)"
CLIENT_DIR="$(snapshot_linked client "$CLIENT_DIR" TunnelClient)"
BACKEND_DIR="$(snapshot_linked backend "$BACKEND_DIR" TestBackend)"
HARNESS_DLL="$(snapshot_linked harness "$HARNESS_DIR" LoadTests)/LoadTests.dll"

# ---------------------------------------------------------------------------------------------------- processes
GEN_PIDS=()
# shellcheck disable=SC2317  # called from on_exit
cleanup_first() {
  local pid
  for pid in "${GEN_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
install_traps

# The whole run is bounded: the watchdog sends SIGTERM after the cap, and the EXIT trap cleans up.
PER_COUNT_S=$((90 + 3 + wrk_seconds + WARMUP_S + DURATION_S + 60))
HARD_CAP_S=$((120 + ${#NODE_COUNTS[@]} * PER_COUNT_S))
start_watchdog "$HARD_CAP_S"

require_free "$REDIS_PORT"; require_free "$BACKEND_PORT"
for ((i = 1; i <= MAX_NODES; i++)); do require_free "$(node_port "$i")"; done

start redis "$ART/redis" -- redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$ART/redis" --daemonize no --loglevel warning
REDIS_PID=$LAST_PID
wait_until redis "$LAST_PID" "" redis-cli -p "$REDIS_PORT" ping
start TestBackend "$BACKEND_DIR" -- ./t2-scaleout-backend --urls "http://127.0.0.1:$BACKEND_PORT"
BACKEND_PID=$LAST_PID
wait_until TestBackend "$LAST_PID" "" http_ok "http://127.0.0.1:$BACKEND_PORT/loadtest/ping"
BASE_PROCESSES=${#STARTED_PIDS[@]}

dev_grant_env
# The node secret lives only in this process's environment and the nodes' (never in a file or a log).
NODE_SECRET="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"

start_node() { # i
  local i="$1"
  start "node$i" "$SERVER_DIR" "${DEV_GRANT_ENV[@]}" \
    Tunnel__Directory__Redis="127.0.0.1:$REDIS_PORT" Tunnel__Directory__NodeUrl="$(node_url "$i")" \
    Tunnel__Directory__NodeSecret="$NODE_SECRET" Tunnel__DrainTimeout=00:00:02 \
    -- ./t2-scaleout-node --urls "$(node_url "$i")"
  NODE_PIDS[i]=$LAST_PID
  wait_until "node$i" "$LAST_PID" "" http_ok "$(node_url "$i")/healthz"
}

# ---------------------------------------------------------------------------------------------------- helpers
# proc_ticks PID: utime + stime of a process in clock ticks (0 when it is gone).
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# scrape N TAG: every node's /metrics into metrics/<N>-<TAG>-node<i>.txt, and the CPU ticks of node 1, nodes 2..N
# together, TunnelClient, TestBackend and redis-server into metrics/<N>-<TAG>-cpu.txt.
scrape() {
  local n="$1" tag="$2" i rest=0
  for ((i = 2; i <= n; i++)); do rest=$((rest + $(proc_ticks "${NODE_PIDS[i]}"))); done
  printf '%s %s %s %s %s\n' "$(proc_ticks "${NODE_PIDS[1]}")" "$rest" "$(proc_ticks "$CLIENT_PID")" \
    "$(proc_ticks "$BACKEND_PID")" "$(proc_ticks "$REDIS_PID")" >"$ART/metrics/$n-$tag-cpu.txt"
  for ((i = 1; i <= n; i++)); do
    curl -fsS --max-time 5 "$(node_url "$i")/metrics" >"$ART/metrics/$n-$tag-node$i.txt" 2>/dev/null || : >"$ART/metrics/$n-$tag-node$i.txt"
  done
}
# metric_sum FILE REGEX: sum of the samples whose name{labels} matches REGEX.
metric_sum() { awk -v re="$2" '!/^#/ && $1 ~ re { s += $NF } END { printf "%.0f", s + 0 }' "$1"; }
# counts N TAG → "requests forwarded_ok forwarded_all forward_errors forward_aborted" summed over the nodes: forward errors are the
# entry nodes' tunnel2_requests_total{session="remote"} failures other than client_aborted (a generator that stops
# with requests in flight, as wrk does at its end, aborts them; that is not the product's failure).
counts() {
  local n="$1" tag="$2" i f req=0 fwd=0 all=0 err=0 abo=0
  for ((i = 1; i <= n; i++)); do
    f="$ART/metrics/$n-$tag-node$i.txt"
    req=$((req + $(metric_sum "$f" '^tunnel2_requests_total([{]|$)')))
    fwd=$((fwd + $(metric_sum "$f" '^tunnel2_forwarded_requests_total[{].*outcome="completed"')))
    all=$((all + $(metric_sum "$f" '^tunnel2_forwarded_requests_total[{]')))
    err=$((err + $(metric_sum "$f" '^tunnel2_requests_total[{]session="remote",outcome="[a-z_]+"') - $(metric_sum "$f" '^tunnel2_requests_total[{]session="remote",outcome="(ok|client_aborted)"')))
    abo=$((abo + $(metric_sum "$f" '^tunnel2_requests_total[{]session="remote",outcome="client_aborted"')))
  done
  echo "$req $fwd $all $err $abo"
}
# forwarded_between N BEFORE AFTER → "share% forwarded_ok errors aborted requests forwarded" over the interval; the
# share counts every request sent on to another node (tunnel2_forwarded_requests_total, any outcome).
forwarded_between() {
  local r0 f0 t0 e0 a0 r1 f1 t1 e1 a1
  read -r r0 f0 t0 e0 a0 < <(counts "$1" "$2")
  read -r r1 f1 t1 e1 a1 < <(counts "$1" "$3")
  awk -v r=$((r1 - r0)) -v f=$((f1 - f0)) -v t=$((t1 - t0)) -v e=$((e1 - e0)) -v a=$((a1 - a0)) \
    'BEGIN { printf "%s %d %d %d %d %d\n", (r > 0 ? sprintf("%.1f", 100 * t / r) : "—"), f, e, a, r, t }'
}
# cpu_cost N BEFORE AFTER REQUESTS FORWARDED → "node1 rest client backend redis": CPU µs per request (node 1,
# TunnelClient, TestBackend, redis-server: per request; nodes 2..N together: per forwarded request).
cpu_cost() {
  awk -v hz="$CLK_TCK" -v r="$4" -v f="$5" 'NR == FNR { for (i = 1; i <= NF; i++) b[i] = $i; next }
    { for (i = 1; i <= NF; i++) { d = ($i - b[i]) * 1e6 / hz; den = (i == 2) ? f : r
        printf "%s%s", (den > 0 ? sprintf("%.0f", d / den) : "—"), (i < NF ? " " : "\n") } }' \
    "$ART/metrics/$1-$2-cpu.txt" "$ART/metrics/$1-$3-cpu.txt"
}
# forward_failures ERRORS ABORTED → the table cell.
forward_failures() { if (($2 > 0)); then echo "$1 (+ $2 aborted by the generator)"; else echo "$1"; fi; }
cpu_ticks() { awk '/^cpu / { idle = $5 + $6; total = 0; for (i = 2; i <= NF; i++) total += $i; print total, idle; exit }' /proc/stat; }
cpu_busy_since() { # "total idle" from cpu_ticks → % of all cores busy since then
  local t0 i0 t1 i1
  read -r t0 i0 <<<"$1"; read -r t1 i1 < <(cpu_ticks)
  awk -v t=$((t1 - t0)) -v i=$((i1 - i0)) 'BEGIN { if (t > 0) printf "%.0f", 100 * (t - i) / t; else print "—" }'
}
# wrk prints 812.00us / 1.23ms / 1.01s: to ms.
wrk_ms() { awk -v v="$1" 'BEGIN { u = v; gsub(/[0-9.]/, "", u); n = v + 0; if (v == "") print "—"; else printf "%.2f", (u == "us" ? n / 1000 : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n) }'; }

# mixture_quantiles FILE Q...: FILE has "component weight percentile ms" lines (each component's percentile curve,
# in order); prints the smallest latency x at which the request-weighted mixture of the curves reaches each Q.
mixture_quantiles() {
  local file="$1"; shift
  awk -v qs="$*" '
    { c = $1; if (!(c in W)) { W[c] = $2; total += $2; ids[++nc] = c }
      k = ++n[c]; P[c, k] = $3; M[c, k] = $4
      if (lo == "" || $4 < lo) lo = $4; if ($4 > hi) hi = $4 }
    function F(c, x,   k) {
      if (x < M[c, 1]) return 0
      for (k = 1; k < n[c]; k++) if (x < M[c, k + 1]) return P[c, k] + (P[c, k + 1] - P[c, k]) * (x - M[c, k]) / (M[c, k + 1] - M[c, k])
      return 100 }
    function G(x,   j, s) { s = 0; for (j = 1; j <= nc; j++) s += W[ids[j]] * F(ids[j], x); return s / total }
    END {
      if (total <= 0) { m = split(qs, q, " "); for (j = 1; j <= m; j++) printf "— "; print ""; exit }
      m = split(qs, q, " ")
      for (j = 1; j <= m; j++) {
        a = lo; b = hi
        if (G(a) >= q[j]) { printf "%.2f ", a; continue }
        for (it = 0; it < 100; it++) { mid = (a + b) / 2; if (G(mid) >= q[j]) b = mid; else a = mid }
        printf "%.2f ", b }
      print "" }' "$file"
}

# json_curve COMPONENT FILE: "component weight percentile ms" lines of a LoadTests results.json (max as percentile 100).
json_curve() {
  jq -r --arg c "$1" '.targetTotals[0] as $t | (.latencyDistributions[0].points[] | "\($c) \($t.requests) \(.percentile) \(.ms)"),
    "\($c) \($t.requests) 100 \($t.latency.maxMs)"' "$2"
}
# failures FILE...: "total (reason: n, …)" over LoadTests results.json files.
failures_of() {
  jq -rs '[.[] | .targetTotals[0]] as $t | ($t | map(.failed) | add) as $n
    | ([$t[] | .failures | to_entries[]] | group_by(.key) | map("\(.[0].key): \(map(.value) | add)") | join(", ")) as $r
    | if $n == 0 then "0" else "\($n) (\($r))" end' "$@"
}

RESULTS="$ART/results.tsv"   # N  kind  key  value
: >"$RESULTS"
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }
value_of() { awk -F'\t' -v n="$1" -v k="$2" -v key="$3" '$1 == n && $2 == k && $3 == key { v = $4 } END { print (v == "" ? "—" : v) }' "$RESULTS"; }
ANY_FAILED=0
NOTES=()

# ---------------------------------------------------------------------------------------------------- closed loop
closed_loop_wrk() { # N
  local n="$1" lua="$ART/raw/nodes-$1.lua" out="$ART/raw/wrk-$1.txt" i ports="" rps p50 p99 non2xx sock failed
  for ((i = 1; i <= n; i++)); do ports+="${ports:+, }$(node_port "$i")"; done
  cat >"$lua" <<EOF
-- Generated by scale-out.sh: wrk thread i connects to node i, so the connections split evenly over the nodes.
local ports = { $ports }
local count = 0
function setup(thread)
  count = count + 1
  thread.addr = wrk.lookup("127.0.0.1", tostring(ports[count]))[1]
end
EOF
  local url
  url="$(node_url 1)/session/$SESSION/loadtest/get"
  timeout 60 wrk -t"$n" -c"$connections" -d3s -s "$lua" "$url" >"$ART/raw/wrk-$n-warmup.txt" 2>&1 || true
  CLOSED_CMD="wrk -tN -c$connections -d${wrk_seconds}s --latency -s nodes.lua $(node_url 1)/session/<id>/loadtest/get"
  timeout $((wrk_seconds + 60)) wrk -t"$n" -c"$connections" -d"${wrk_seconds}s" --latency -s "$lua" "$url" >"$out" 2>&1 || true
  rps="$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
  [[ -n "$rps" ]] || { log "wrk failed: $(tail -n 3 "$out" | tr '\n' ' ')"; return 1; }
  p50="$(wrk_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
  p99="$(wrk_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
  non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")"
  sock="$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out")"
  failed=$((${non2xx:-0} + ${sock:-0}))
  record "$n" closed rps "$(awk -v v="$rps" 'BEGIN { printf "%.0f", v }')"
  record "$n" closed p50 "$p50"; record "$n" closed p99 "$p99"
  record "$n" closed failed "$failed${non2xx:+ (non-2xx: $non2xx)}${sock:+ (socket errors: $sock)}"
  ((failed == 0)) || ANY_FAILED=1
}

closed_loop_loadtests() { # N
  local n="$1" i copies profile="$ART/raw/ceiling-$1.json" files=() curve="$ART/raw/closed-$1.curve" p50 p99 failed
  copies=$((connections / n))
  cat >"$profile" <<EOF
{
  "name": "scaleout-ceiling",
  "description": "Generated by scale-out.sh: closed loop, $copies copies on one node's URL.",
  "requestTimeout": "10s",
  "maxConnectionsPerServer": 1000,
  "warmUp": { "rate": 200, "during": "3s" },
  "scenarios": [ { "name": "get", "weight": 1, "method": "GET", "paths": { "testbackend": "/loadtest/get" } } ],
  "loadSimulations": [ { "keepConstant": { "copies": $copies, "during": "${wrk_seconds}s" } } ],
  "defaultThresholds": false,
  "thresholds": {}
}
EOF
  CLOSED_CMD="N × LoadTests run --profile <keepConstant $copies copies × ${wrk_seconds}s> --targets backend-tunnel --tunnel <node i> (in parallel)"
  GEN_PIDS=()
  for ((i = 1; i <= n; i++)); do
    timeout $((wrk_seconds + 120)) dotnet "$HARNESS_DLL" run --profile "$profile" --targets backend-tunnel \
      --tunnel "$(node_url "$i")" --session "$SESSION" --live off --out "$ART/raw/closed-$n-node$i" \
      >"$ART/raw/closed-$n-node$i.log" 2>&1 &
    GEN_PIDS+=("$!")
  done
  for i in "${GEN_PIDS[@]}"; do wait "$i" || true; done
  GEN_PIDS=()
  : >"$curve"
  for ((i = 1; i <= n; i++)); do
    [[ -s "$ART/raw/closed-$n-node$i/results.json" ]] || { log "LoadTests run on node $i left no results: $(tail -n 2 "$ART/raw/closed-$n-node$i.log" | tr '\n' ' ')"; return 1; }
    files+=("$ART/raw/closed-$n-node$i/results.json")
    json_curve "node$i" "$ART/raw/closed-$n-node$i/results.json" >>"$curve"
  done
  record "$n" closed rps "$(jq -s '[.[] | .windows[0].achievedRps] | add | floor' "${files[@]}")"
  read -r p50 p99 < <(mixture_quantiles "$curve" 50 99)
  record "$n" closed p50 "$p50"; record "$n" closed p99 "$p99"
  failed="$(failures_of "${files[@]}")"
  record "$n" closed failed "$failed"
  [[ "$failed" == 0 ]] || ANY_FAILED=1
}

# ---------------------------------------------------------------------------------------------------- open loop
open_loop() { # N
  local n="$1" i per files=() curve="$ART/raw/open-$1.curve" p50 p99 per_node="" failed
  per="$(awk -v r="$rps" -v n="$n" 'BEGIN { v = r / n; if (v == int(v)) printf "%d", v; else printf "%.4f", v }')"
  OPEN_CMD="N × LoadTests rate --url <node i>/session/<id>/loadtest/get --rps $rps/N --duration $duration --warm-up $warmup (in parallel, one per node)"
  GEN_PIDS=()
  for ((i = 1; i <= n; i++)); do
    timeout $((WARMUP_S + DURATION_S + 120)) dotnet "$HARNESS_DLL" rate --url "$(node_url "$i")/session/$SESSION/loadtest/get" \
      --rps "$per" --duration "$duration" --warm-up "$warmup" --live off --threshold 'http_req_failed:rate==0' \
      --json "$ART/raw/rate-$n-node$i.json" >"$ART/raw/rate-$n-node$i.log" 2>&1 &
    GEN_PIDS+=("$!")
  done
  for i in "${GEN_PIDS[@]}"; do wait "$i" || true; done
  GEN_PIDS=()
  : >"$curve"
  for ((i = 1; i <= n; i++)); do
    [[ -s "$ART/raw/rate-$n-node$i.json" ]] || { log "LoadTests rate on node $i left no results: $(tail -n 2 "$ART/raw/rate-$n-node$i.log" | tr '\n' ' ')"; return 1; }
    files+=("$ART/raw/rate-$n-node$i.json")
    json_curve "node$i" "$ART/raw/rate-$n-node$i.json" >>"$curve"
    per_node+="${per_node:+ / }$(jq -r '.targetTotals[0].latency.p99Ms * 100 | round / 100' "$ART/raw/rate-$n-node$i.json")"
  done
  if ((n == 1)); then
    read -r p50 p99 < <(jq -r '.targetTotals[0].latency | "\(.p50Ms * 100 | round / 100) \(.p99Ms * 100 | round / 100)"' "${files[0]}")
  else
    read -r p50 p99 < <(mixture_quantiles "$curve" 50 99)
  fi
  record "$n" open offered "$rps"
  record "$n" open achieved "$(jq -s '[.[] | .windows[0].achievedRps] | add | . * 10 | round / 10' "${files[@]}")"
  record "$n" open p50 "$p50"; record "$n" open p99 "$p99"; record "$n" open p99nodes "$per_node"
  record "$n" open lagp99 "$(jq -s '[.[] | .targetTotals[0].lag.p99Ms] | max | . * 100 | round / 100' "${files[@]}")"
  failed="$(failures_of "${files[@]}")"
  record "$n" open failed "$failed"
  [[ "$failed" == 0 ]] || ANY_FAILED=1
}

# ---------------------------------------------------------------------------------------------------- runs
LOAD_START="$(load_average)"
STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"
T0=$SECONDS
CLOSED_CMD=""; OPEN_CMD=""
for n in "${NODE_COUNTS[@]}"; do
  log "=== $n node(s)"
  NODE_PIDS=()
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  for ((i = 1; i <= n; i++)); do start_node "$i"; done
  start TunnelClient "$CLIENT_DIR" DOTNET_ENVIRONMENT=Development Tunnel__StatusUrl= \
    -- ./t2-scaleout-client --server "$(node_url 1)" --backend "http://127.0.0.1:$BACKEND_PORT" --uplinks "$uplinks"
  CLIENT_PID=$LAST_PID
  wait_until TunnelClient "$LAST_PID" "" http_ok "$(node_url 1)/session/$SESSION/loadtest/ping"
  # Forwarding ready: every other node reaches the session through the directory. A node that does not is measured
  # anyway (its failures are the finding) and noted.
  for ((i = 2; i <= n; i++)); do
    ok=0
    for ((k = 0; k < 30; k++)); do
      if http_ok "$(node_url "$i")/session/$SESSION/loadtest/ping"; then ok=1; break; fi
      sleep 0.5
    done
    if ((ok)); then log "node $i forwards to node 1"
    else
      status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$(node_url "$i")/session/$SESSION/loadtest/ping" || true)"
      NOTES+=("With $n nodes, node $i did not forward a request for the session within 15 s before the measurement (last answer: HTTP $status).")
      log "node $i does not forward (HTTP $status); measuring anyway"
    fi
  done

  busy="$(cpu_ticks)"; scrape "$n" closed-before
  if "closed_loop_$closed_loop" "$n"; then
    record "$n" closed cpu "$(cpu_busy_since "$busy")"
    scrape "$n" closed-after
    read -r share fwd err abo reqs fwd_all < <(forwarded_between "$n" closed-before closed-after)
    read -r c_node1 c_rest c_client c_backend c_redis < <(cpu_cost "$n" closed-before closed-after "$reqs" "$fwd_all")
    record "$n" closed cpu_node1 "$c_node1"; record "$n" closed cpu_rest "$c_rest"; record "$n" closed cpu_client "$c_client"
    record "$n" closed cpu_backend "$c_backend"; record "$n" closed cpu_redis "$c_redis"
    record "$n" closed forwarded "$share"; record "$n" closed fwdfailed "$(forward_failures "$err" "$abo")"
    ((err == 0)) || ANY_FAILED=1
    log "closed loop: $(value_of "$n" closed rps) RPS, p50 $(value_of "$n" closed p50) ms, p99 $(value_of "$n" closed p99) ms, failed $(value_of "$n" closed failed), forwarded $share % ($fwd ok, $err failed, $abo aborted, of $reqs)"
  else
    NOTES+=("With $n nodes the closed-loop measurement produced no result (see raw/ in the artifacts).")
    ANY_FAILED=1
  fi

  busy="$(cpu_ticks)"; scrape "$n" open-before
  if open_loop "$n"; then
    record "$n" open cpu "$(cpu_busy_since "$busy")"
    scrape "$n" open-after
    read -r share fwd err abo reqs fwd_all < <(forwarded_between "$n" open-before open-after)
    read -r c_node1 c_rest c_client c_backend c_redis < <(cpu_cost "$n" open-before open-after "$reqs" "$fwd_all")
    record "$n" open cpu_node1 "$c_node1"; record "$n" open cpu_rest "$c_rest"; record "$n" open cpu_client "$c_client"
    record "$n" open cpu_backend "$c_backend"; record "$n" open cpu_redis "$c_redis"
    record "$n" open forwarded "$share"; record "$n" open fwdfailed "$(forward_failures "$err" "$abo")"
    ((err == 0)) || ANY_FAILED=1
    log "open loop: $(value_of "$n" open achieved)/$rps RPS, p50 $(value_of "$n" open p50) ms, p99 $(value_of "$n" open p99) ms (per node $(value_of "$n" open p99nodes)), failed $(value_of "$n" open failed), forwarded $share % ($fwd ok, $err failed, $abo aborted, of $reqs)"
  else
    NOTES+=("With $n nodes the open-loop measurement produced no result (see raw/ in the artifacts).")
    ANY_FAILED=1
  fi

  # The client first (its uplinks close), then the nodes, which then have nothing to drain.
  stop_from "$BASE_PROCESSES"
done
LOAD_END="$(load_average)"
ELAPSED=$((SECONDS - T0))

# ---------------------------------------------------------------------------------------------------- report
MACHINE="$(machine_info)"
SOFTWARE=".NET $(dotnet_runtime_version), redis-server $(redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2)"
[[ "$closed_loop" == wrk ]] && SOFTWARE+=", wrk $( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')"
commit_info
cpu_cells() { echo "$(value_of "$1" "$2" cpu_node1) / $(value_of "$1" "$2" cpu_client) / $(value_of "$1" "$2" cpu_backend) / $(value_of "$1" "$2" cpu_redis) | $(value_of "$1" "$2" cpu_rest)"; }
expected() { awk -v n="$1" 'BEGIN { printf "%.0f", 100 * (n - 1) / n }'; }
SECTION="$ART/section.md"
{
  echo "$BEGIN_MARK"
  echo "<!-- Generated by tunnel2-load-tests/scripts/scale-out.sh; edit outside the markers. -->"
  echo "## Scale-out: 1, 2 and 3 nodes on one machine (forwarding cost)"
  echo
  echo "> **Caveat.** All nodes, Redis, the TunnelClient, TestBackend and the load generator run on the same $(nproc) vCPUs."
  echo "> Every added node is another process competing for the same two cores, not added capacity, and the"
  echo "> requests entering at nodes 2..N take an extra HTTP hop to node 1. So these numbers measure **what forwarding"
  echo "> costs**, not horizontal capacity: on separate machines each node brings its own cores."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| Date | $STARTED (measurements took ${ELAPSED} s) |"
  echo "| Machine | $MACHINE |"
  echo "| Load average (1/5/15 min) | $LOAD_START at the start, $LOAD_END at the end |"
  echo "| Software | $SOFTWARE; commit $COMMIT$DIRTY; $BUILD_INFO |"
  echo "| Topology | \`redis-server --save '' --appendonly no\` on 127.0.0.1:$REDIS_PORT; node i = TunnelServer (Production, dev grant from the environment) on 127.0.0.1:$((PORT_BASE + 1))…, with \`Tunnel__Directory__Redis\`, \`Tunnel__Directory__NodeUrl\` = its own URL and a shared \`Tunnel__Directory__NodeSecret\`; one TunnelClient \`--server $(node_url 1) --uplinks $uplinks\` (all uplinks on node 1, so nodes 2..N forward every request to node 1); TestBackend \`/loadtest/get\` on 127.0.0.1:$BACKEND_PORT; a fresh set of nodes, client and directory for every N |"
  echo "| Closed loop | \`$CLOSED_CMD\` |"
  echo "| Open loop | \`$OPEN_CMD\` |"
  echo "| Forwarded | Σ \`tunnel2_forwarded_requests_total\` ÷ Σ \`tunnel2_requests_total\` over the nodes' \`/metrics\`, read before and after each measurement (warm-up included); with an even split (N−1)/N is expected |"
  echo "| Command | \`tunnel2-load-tests/scripts/scale-out.sh${SCRIPT_ARGS:+ $SCRIPT_ARGS}\` |"
  echo "| Method | one run per N, nodes started in order 1..N; load split evenly over the nodes' public URLs; loopback only |"
  echo
  if [[ "$closed_loop" == wrk ]]; then closed_tool="wrk's latency is service time"; else closed_tool="keepConstant latency"; fi
  echo "**Closed loop** (the ceiling: $connections connections in total, split evenly over the nodes; $closed_tool, not corrected for coordinated omission; a connection to node 1 is not forwarded and so finishes more requests than one to another node, hence a forwarded share below the even split)"
  echo
  echo "| Nodes | RPS | p50 ms | p99 ms | failed | forwarded (even split) | forward failures | CPU µs/request: node 1 / client / backend / redis | CPU µs per forwarded request, nodes 2..N | CPU busy |"
  echo "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
  for n in "${NODE_COUNTS[@]}"; do
    echo "| $n | $(value_of "$n" closed rps) | $(value_of "$n" closed p50) | $(value_of "$n" closed p99) | $(value_of "$n" closed failed) | $(value_of "$n" closed forwarded) % ($(expected "$n") %) | $(value_of "$n" closed fwdfailed) | $(cpu_cells "$n" closed) | $(value_of "$n" closed cpu) % |"
  done
  echo
  echo "**Open loop** ($rps RPS in total for $duration after a $warmup warm-up, $rps/N to each node; latency from the intended start, corrected for coordinated omission; for N > 1 the p50/p99 over all requests come from the per-node percentile curves, weighted by requests)"
  echo
  echo "| Nodes | offered RPS | achieved RPS | p50 ms | p99 ms | p99 per node (1 / 2 / …) ms | failed | forwarded (even split) | forward failures | generator lag p99 ms | CPU µs/request: node 1 / client / backend / redis | CPU µs per forwarded request, nodes 2..N | CPU busy |"
  echo "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"
  for n in "${NODE_COUNTS[@]}"; do
    echo "| $n | $(value_of "$n" open offered) | $(value_of "$n" open achieved) | $(value_of "$n" open p50) | $(value_of "$n" open p99) | $(value_of "$n" open p99nodes) | $(value_of "$n" open failed) | $(value_of "$n" open forwarded) % ($(expected "$n") %) | $(value_of "$n" open fwdfailed) | $(value_of "$n" open lagp99) | $(cpu_cells "$n" open) | $(value_of "$n" open cpu) % |"
  done
  if ((${#NOTES[@]})); then
    echo
    for note in "${NOTES[@]}"; do echo "* $note"; done
  fi
  echo
  echo "*Forwarded*: share of all public requests that the entry node sent on to node 1; *(even split)* is (N−1)/N."
  echo "*Forward failures*: requests entering at nodes 2..N that failed on the way to node 1 (their"
  echo "\`tunnel2_requests_total{session=\"remote\"}\` failures); requests the generator itself abandoned when it stopped (wrk"
  echo "ends with requests in flight) are shown apart as *aborted by the generator*, not as failures."
  echo "*CPU µs*: utime + stime (\`/proc/PID/stat\`) of each process over the measurement (warm-up included) divided by the"
  echo "public requests in the same interval (\`tunnel2_requests_total\`), and for nodes 2..N together by the requests they"
  echo "forwarded: the entry side of forwarding. The generator is not included. *CPU busy*: all cores together, from"
  echo "\`/proc/stat\` over the measurement, whoever used them (other work on the machine included: see the load average)."
  echo "$END_MARK"
} >"$SECTION"
cat "$SECTION"

if ((doc)); then
  write_doc_section "$DOC" "$SECTION" "$BEGIN_MARK" "$END_MARK"
  log "wrote $DOC"
fi
log "artifacts: $ART"
((ANY_FAILED == 0)) || { log "some requests failed or a measurement produced no result: see the table"; exit 99; }
