#!/usr/bin/env bash
# The cost of TLS on the uplink (issue #5): `LoadTests speedtest` through the tunnel with the TunnelClient dialling a
# plain http:// uplink (TLS off) and an https:// uplink (TLS on), alternated and repeated, then a Markdown table of the
# medians (Mbit/s off and on, overhead in percent, CPU seconds of TunnelServer + TunnelClient per GiB moved).
#
#   tunnel2-load-tests/scripts/tls-speedtest.sh [options]
#
# Setup (all on 127.0.0.1, one machine):
#   TestBackend                                    http://127.0.0.1:12300
#   TunnelServer   public entry (plain HTTP)       http://127.0.0.1:12301   ← LoadTests speedtest
#                  uplink endpoint, plain          http://127.0.0.1:12302
#                  uplink endpoint, TLS            https://127.0.0.1:12303  (a throwaway self-signed certificate)
#   TunnelClient   restarted for every leg: --server http://…:12302 (TLS off) or https://…:12303 (TLS on), the
#                  latter pinned with Tunnel:ServerCertificateSha256 (the certificate's SHA-256, no accept-any flag)
# One server process serves both uplink endpoints (standard Kestrel:Endpoints configuration), so the only thing that
# differs between the legs is the uplink's transport; the public side and the backend hop are plain HTTP in both.
#
# Per leg and mode (download: GET /loadtest/bytes/{size}; upload: PUT /loadtest/info), as compare.sh's speed test:
#   LoadTests speedtest --mode MODE --streams 4 --payload-size 64MiB --duration 10s --url <public>/session/<id>/…
# Repetitions alternate TLS off and on (the order swaps every repetition); the table shows medians.
# CPU: utime + stime of TunnelServer and TunnelClient (/proc/PID/stat, sampled at 10 Hz) over the measured seconds
# 2..N-1 of each call (between the harness's "1s" and "<N-1>s" lines) as cores used, divided by the
# transfer rate of those seconds (GiB/s): CPU seconds per GiB. What else used the CPU in the same window (other
# processes, interrupts + softirq) is reported too: on a shared machine it tells a fair comparison from a noisy one.
#
# Options:
#   --seconds N     measured seconds per speedtest call (default 10)
#   --reps N        repetitions, each one TLS-off and one TLS-on leg (default 5)
#   --no-build      use the existing Release binaries
#   --doc           write the result into docs/performance.md: a section between <!-- tls-speedtest:begin --> and
#                   <!-- tls-speedtest:end --> (placed before "## Not measured yet", replacing the TLS bullet there,
#                   when the markers are absent), and the TLS rows of the speed-test table
#   -h, --help      this text
# Environment: TUNNEL2_TLS_BASE_PORT moves the four ports (default 12300: backend, +1 public, +2 uplink, +3 TLS uplink).
#
# Everything started is stopped on exit, also on Ctrl-C; the whole run is bounded by a watchdog. The certificate and
# key live in a temporary directory removed on exit. Artifacts: artifacts/tls-speedtest/<timestamp>/ (speedtest JSON
# and logs per call, results.tsv, table.md, section.md).
# Exit code: 0 when every call ran without failed transfers, 1 when the script failed, 130 when interrupted.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BASE_PORT="${TUNNEL2_TLS_BASE_PORT:-12300}"
BACKEND_PORT=$BASE_PORT
PUBLIC_PORT=$((BASE_PORT + 1))
UPLINK_PORT=$((BASE_PORT + 2))
TLS_PORT=$((BASE_PORT + 3))
STREAMS=4
PAYLOAD=64MiB
DOC="$REPO_ROOT/docs/performance.md"
BEGIN_MARK="<!-- tls-speedtest:begin -->"
END_MARK="<!-- tls-speedtest:end -->"
PORT_IN_USE="port {port} is in use ({owner}); move the ports with TUNNEL2_TLS_BASE_PORT"

# ---------------------------------------------------------------------------------------------------- arguments
seconds=10
reps=5
build=1
doc=0
while (($#)); do
  case "$1" in
    --seconds) shift; seconds="${1:?--seconds needs a value}" ;;
    --seconds=*) seconds="${1#*=}" ;;
    --reps) shift; reps="${1:?--reps needs a value}" ;;
    --reps=*) reps="${1#*=}" ;;
    --no-build) build=0 ;;
    --doc) doc=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done
# At least 3: the CPU window is the seconds 2..N-1.
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]] || ((seconds < 3 || seconds > 600)); then die "--seconds must be 3..600"; fi
if ! [[ "$reps" =~ ^[1-9][0-9]*$ ]] || ((reps > 50)); then die "--reps must be 1..50"; fi

for tool in dotnet openssl curl jq ss awk; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

# ---------------------------------------------------------------------------------------------------- build
cd "$REPO_ROOT"
if ((build)); then
  log "dotnet build -c Release (TunnelServer, TunnelClient, TestBackend, LoadTests)"
  for project in src/TunnelServer/TunnelServer.csproj src/TunnelClient/TunnelClient.csproj \
    tunnel2-load-tests/TestBackend/TestBackend.csproj tunnel2-load-tests/LoadTests/LoadTests.csproj; do
    dotnet build "$project" -c Release -nologo -v quiet
  done
fi
SERVER_BIN=src/TunnelServer/bin/Release/net10.0
CLIENT_BIN=src/TunnelClient/bin/Release/net10.0
BACKEND_BIN=tunnel2-load-tests/TestBackend/bin/Release/net10.0
HARNESS_BIN=tunnel2-load-tests/LoadTests/bin/Release/net10.0
for f in "$SERVER_BIN/TunnelServer.dll" "$CLIENT_BIN/TunnelClient.dll" "$BACKEND_BIN/TestBackend.dll" "$HARNESS_BIN/LoadTests.dll"; do
  [[ -f "$f" ]] || die "$f missing (build failed, or run without --no-build)"
done
BUILD_INFO="TunnelServer.dll $(date -u -r "$SERVER_BIN/TunnelServer.dll" '+%Y-%m-%d %H:%M UTC'), TunnelClient.dll $(date -u -r "$CLIENT_BIN/TunnelClient.dll" '+%Y-%m-%d %H:%M UTC')"
# What was built: HEAD and whether src had uncommitted changes at build time (others may commit during the run).
commit_info

RUN_ID="$(date -u +%Y%m%d-%H%M%S)"
ART="$REPO_ROOT/artifacts/tls-speedtest/$RUN_ID"
mkdir -p "$ART/logs" "$ART/raw"
LOG_DIR="$ART/logs"
# A copy of the binaries (lib/common.sh snapshot). The .NET processes start through a link to their apphost named
# t2-tls-*, so their command lines are told apart from everyone else's.
SERVER_DIR="$(snapshot "$SERVER_BIN" "$ART/bin/server")"
CLIENT_DIR="$(snapshot "$CLIENT_BIN" "$ART/bin/client")"
BACKEND_DIR="$(snapshot "$BACKEND_BIN" "$ART/bin/backend")"
HARNESS_DLL="$(snapshot "$HARNESS_BIN" "$ART/bin/harness")/LoadTests.dll"
ln -sf TunnelServer "$SERVER_DIR/t2-tls-server"
ln -sf TunnelClient "$CLIENT_DIR/t2-tls-client"
ln -sf TestBackend "$BACKEND_DIR/t2-tls-backend"

# ---------------------------------------------------------------------------------------------------- processes
CERT_DIR=""
HARNESS_PID=""
# shellcheck disable=SC2317  # called from on_exit
cleanup_first() {
  [[ -z "$CERT_DIR" ]] || rm -rf "$CERT_DIR"
  stop_pid LoadTests "$HARNESS_PID"
}
# Planned time: per repetition two client starts and four speedtest calls; plus start-up, with a generous margin.
HARD_CAP_SECONDS=$((reps * (2 * 40 + 4 * (seconds + 40)) + 300))
INTERRUPT_MESSAGE="interrupted (or the ${HARD_CAP_SECONDS} s hard cap was reached)"
install_traps
start_watchdog "$HARD_CAP_SECONDS"

for port in "$BACKEND_PORT" "$PUBLIC_PORT" "$UPLINK_PORT" "$TLS_PORT"; do require_free "$port"; done

# The throwaway certificate: ECDSA P-256, self-signed, for 127.0.0.1; the client trusts exactly it (pinning).
CERT_DIR="$(mktemp -d)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$CERT_DIR/server.key" -out "$CERT_DIR/server.crt" 2>"$ART/logs/openssl.log" ||
  die "openssl could not make the certificate ($(tail -n 2 "$ART/logs/openssl.log"))"
CERT_SHA256="$(openssl x509 -noout -fingerprint -sha256 -in "$CERT_DIR/server.crt" | cut -d= -f2 | tr -d ':')"
[[ "$CERT_SHA256" =~ ^[0-9A-Fa-f]{64}$ ]] || die "could not read the certificate's SHA-256 ($CERT_SHA256)"
log "certificate SHA-256 $CERT_SHA256 (in $CERT_DIR, removed on exit)"

start TestBackend "$BACKEND_DIR" -- ./t2-tls-backend --urls "http://127.0.0.1:$BACKEND_PORT"
BACKEND_PID=$LAST_PID
wait_ready TestBackend "http://127.0.0.1:$BACKEND_PORT/loadtest/ping" "$BACKEND_PID"

# Production with the dev grant from the environment (lib/common.sh). Three Kestrel endpoints; --urls is then ignored
# by Kestrel, it is given only so that no default address is ever bound.
dev_grant_env
start TunnelServer "$SERVER_DIR" "${DEV_GRANT_ENV[@]}" \
  Kestrel__Endpoints__Public__Url="http://127.0.0.1:$PUBLIC_PORT" \
  Kestrel__Endpoints__Uplink__Url="http://127.0.0.1:$UPLINK_PORT" \
  Kestrel__Endpoints__UplinkTls__Url="https://127.0.0.1:$TLS_PORT" \
  Kestrel__Endpoints__UplinkTls__Certificate__Path="$CERT_DIR/server.crt" \
  Kestrel__Endpoints__UplinkTls__Certificate__KeyPath="$CERT_DIR/server.key" \
  -- ./t2-tls-server --urls "http://127.0.0.1:$PUBLIC_PORT"
SERVER_PID=$LAST_PID
wait_ready TunnelServer "http://127.0.0.1:$PUBLIC_PORT/healthz" "$SERVER_PID"
for port in "$UPLINK_PORT" "$TLS_PORT"; do
  [[ -n "$(port_owner "$port")" ]] || die "TunnelServer does not listen on $port (see $ART/logs/TunnelServer.log)"
done
# What the TLS endpoint negotiates with OpenSSL (which .NET uses on Linux too).
TLS_INFO="$(timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -brief </dev/null 2>&1 |
  awk -F': ' '/^Protocol version/ { p = $2 } /^Ciphersuite/ { c = $2 } END { if (p != "") print p ", " c }' || true)"
log "TLS endpoint negotiates: ${TLS_INFO:-unknown}"

CLIENT_PID=""
# start_client off|on: a fresh TunnelClient (the previous one stopped first) dialling the plain or the TLS uplink.
start_client() {
  local tls="$1" server env_vars=(DOTNET_ENVIRONMENT=Development "Tunnel__StatusUrl=")
  [[ -z "$CLIENT_PID" ]] || stop_pid TunnelClient "$CLIENT_PID"
  if [[ "$tls" == on ]]; then
    server="https://127.0.0.1:$TLS_PORT"
    env_vars+=("Tunnel__ServerCertificateSha256=$CERT_SHA256")
  else
    server="http://127.0.0.1:$UPLINK_PORT"
  fi
  start "TunnelClient-tls-$tls" "$CLIENT_DIR" "${env_vars[@]}" -- ./t2-tls-client --server "$server" \
    --backend "http://127.0.0.1:$BACKEND_PORT" --route "/loadtest=http://127.0.0.1:$BACKEND_PORT"
  CLIENT_PID=$LAST_PID
  wait_ready "TunnelClient-tls-$tls" "http://127.0.0.1:$PUBLIC_PORT/session/$SESSION/loadtest/ping" "$CLIENT_PID"
  # The uplinks really go where they should: established connections to this leg's port, none to the other one.
  local want=$UPLINK_PORT other=$TLS_PORT
  [[ "$tls" == on ]] && { want=$TLS_PORT; other=$UPLINK_PORT; }
  [[ -n "$(ss -H -tn state established "( dport = :$want )")" ]] || die "TLS $tls: no uplink connection to port $want"
  [[ -z "$(ss -H -tn state established "( dport = :$other )")" ]] || die "TLS $tls: an uplink connection to port $other remains"
  log "TunnelClient dials $server (TLS $tls)"
}

# sample_cpu LOG OUT STOP HARNESS: every 0.1 s until STOP exists, one line "time ours mine busy lines": the CPU ticks
# (utime + stime) of TunnelServer + TunnelClient ("ours"), of those plus TestBackend and the harness ("mine"), of the
# whole machine (/proc/stat user + nice + system + steal), how many lines the harness has printed so far, and the
# machine's interrupt + softirq time (/proc/stat irq + softirq: on loopback mostly the network stack itself). Bash
# builtins only (no process per sample but sleep), so the sampler itself costs next to nothing.
ticks_of() { # PID: utime + stime, 0 when gone
  local line
  local -a f
  read -r line 2>/dev/null <"/proc/$1/stat" || { echo 0; return; }
  read -ra f <<<"${line##*) }"
  echo $((f[11] + f[12]))
}
sample_cpu() {
  local log="$1" out="$2" stop="$3" timeout_pid="$4" harness="" n line ours mine user nice system irq softirq steal
  while [[ ! -e "$stop" ]] && kill -0 $$ 2>/dev/null; do
    [[ -n "$harness" ]] || harness="$(pgrep -P "$timeout_pid" 2>/dev/null | head -n1 || true)"
    ours=$(($(ticks_of "$SERVER_PID") + $(ticks_of "$CLIENT_PID")))
    mine=$((ours + $(ticks_of "$BACKEND_PID") + $(ticks_of "${harness:-0}")))
    read -r _ user nice system _ _ irq softirq steal _ </proc/stat
    n=0
    if [[ -e "$log" ]]; then while IFS= read -r line; do n=$((n + 1)); done <"$log"; fi
    echo "$EPOCHREALTIME $ours $mine $((user + nice + system + steal)) $n $((irq + softirq))"
    sleep 0.1
  done >"$out"
}
CLK_TCK="$(getconf CLK_TCK)"

RESULTS="$ART/results.tsv"   # mode tls rep mbps rps failures window_s bytes_per_s cores_ours cores_other cores_irq
: >"$RESULTS"
FAILED_CALLS=0

# speed MODE TLS REP: one speedtest call through the tunnel with the current client. CPU is taken over the measured
# seconds 2..N-1 (from the moment the harness printed its "1s" line to the moment it printed its "<N-1>s" line: whole
# seconds of steady transfer, no start-up, warm-up or cancellation, and the harness still running a second later, so
# the sampler cannot miss the end) and set against the transfer rate of those seconds.
speed() {
  local mode="$1" tls="$2" rep="$3" url json log samples stop code=0 sampler
  if [[ "$mode" == download ]]; then
    url="http://127.0.0.1:$PUBLIC_PORT/session/$SESSION/loadtest/bytes/{size}"
  else
    url="http://127.0.0.1:$PUBLIC_PORT/session/$SESSION/loadtest/info"
  fi
  json="$ART/raw/$mode-tls-$tls-$rep.json"
  log="$ART/raw/$mode-tls-$tls-$rep.log"
  samples="$ART/raw/$mode-tls-$tls-$rep.cpu"
  stop="$samples.stop"
  rm -f "$stop" "$log"
  # In the background so that Ctrl-C reaches the trap at once.
  timeout $((seconds + 60)) dotnet "$HARNESS_DLL" speedtest --mode "$mode" --streams "$STREAMS" --payload-size "$PAYLOAD" \
    --duration "${seconds}s" --url "tls-$tls=$url" --json "$json" >"$log" 2>&1 &
  HARNESS_PID=$!
  sample_cpu "$log" "$samples" "$stop" "$HARNESS_PID" &
  sampler=$!
  wait "$HARNESS_PID" || code=$?
  HARNESS_PID=""
  touch "$stop"
  wait "$sampler" || true
  if [[ ! -s "$json" ]]; then
    log "$mode TLS $tls rep $rep: no result (exit $code: $(tail -n 2 "$log" | tr '\n' ' '))"
    FAILED_CALLS=$((FAILED_CALLS + 1))
    return
  fi
  local mbps rps failures first last window
  read -r mbps rps failures < <(jq -r '.runs[0] | "\(.meanMbps) \(.requestsPerSec) \(.failures)"' "$json")
  # Line numbers of the harness's "1s" line and of its "<N-1>s" line.
  first="$(awk '/^ +1s / { print NR; exit }' "$log")"
  last="$(awk -v s="$((seconds - 1))s" '$1 == s && /^ +[0-9]+s / { print NR; exit }' "$log")"
  # The window as rates, so that a sampler delayed by a busy machine shifts the window but does not skew it:
  # "seconds bytes/s cores(server + client) cores(other processes) cores(irq + softirq)"; bytes/s from the
  # harness's seconds 2..N-1.
  window="$(jq -r --argjson n "$seconds" '[.runs[0].seconds[] | select(.second >= 2 and .second < $n) | .bytes] | "\(add // 0) \(length)"' "$json" |
    awk -v first="${first:-0}" -v last="${last:-0}" -v hz="$CLK_TCK" -v samples="$samples" '
      { bytes = $1; secs = $2 }
      END {
        while ((getline line < samples) > 0) {
          split(line, f, " ")
          if (!a && first > 0 && f[5] >= first) { a = 1; t0 = f[1]; o0 = f[2]; m0 = f[3]; b0 = f[4]; i0 = f[6] }
          if (!z && last > first && f[5] >= last) { z = 1; t1 = f[1]; o1 = f[2]; m1 = f[3]; b1 = f[4]; i1 = f[6] }
        }
        if (a && z && t1 > t0 && secs > 0)
          printf "%.2f %.0f %.3f %.3f %.3f\n", t1 - t0, bytes / secs, (o1 - o0) / hz / (t1 - t0), ((b1 - b0) - (m1 - m0)) / hz / (t1 - t0), (i1 - i0) / hz / (t1 - t0)
        else print "nan 0 nan nan nan"
      }')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$tls" "$rep" "$mbps" "$rps" "$failures" "${window// /$'\t'}" >>"$RESULTS"
  ((failures == 0)) || FAILED_CALLS=$((FAILED_CALLS + 1))
  local w_s w_rate w_ours w_other w_irq
  read -r w_s w_rate w_ours w_other w_irq <<<"$window"
  log "$(printf '%-8s TLS %-3s rep %d: %6.0f Mbit/s, %5.2f req/s, %s failed; steady %s s: server + client %s cores = %s CPU s/GiB; other processes %s, irq + softirq %s cores' \
    "$mode" "$tls" "$rep" "$mbps" "$rps" "$failures" "$w_s" "$w_ours" \
    "$(awk -v c="$w_ours" -v r="$w_rate" 'BEGIN { if (r > 0 && c == c + 0) printf "%.2f", c / (r / 1073741824); else print "—" }')" "$w_other" "$w_irq")"
}

# ---------------------------------------------------------------------------------------------------- runs
LOAD_START="$(load_average)"
STARTED_AT="$(date -u '+%Y-%m-%d %H:%M UTC')"
T0=$SECONDS
log "$reps repetition(s), ${seconds} s per call, $STREAMS streams × $PAYLOAD; artifacts: $ART"
for ((rep = 1; rep <= reps; rep++)); do
  order=(off on)
  ((rep % 2)) || order=(on off)
  for tls in "${order[@]}"; do
    start_client "$tls"
    for mode in download upload; do speed "$mode" "$tls" "$rep"; done
  done
done
stop_pid TunnelClient "$CLIENT_PID"
ELAPSED=$((SECONDS - T0))
LOAD_END="$(load_average)"

# ---------------------------------------------------------------------------------------------------- report
# median COLUMN MODE TLS: the median of a results.tsv column over the repetitions.
median() { awk -F'\t' -v c="$1" -v m="$2" -v t="$3" '$1 == m && $2 == t { print $c }' "$RESULTS" | median_of nan; }
# CPU seconds per GiB of every call, then the median of those.
cpu_per_gib() {
  awk -F'\t' -v m="$1" -v t="$2" '$1 == m && $2 == t && $8 > 0 && $9 == $9 + 0 { print $9 / ($8 / 1073741824) }' "$RESULTS" | median_of nan
}
# median_cores COLUMN MODE TLS: the median of a cores column (10: other processes, 11: irq + softirq), numbers only.
median_cores() { awk -F'\t' -v c="$1" -v m="$2" -v t="$3" '$1 == m && $2 == t && $c == $c + 0 { print $c }' "$RESULTS" | median_of nan; }
count() { awk -F'\t' -v m="$1" -v t="$2" '$1 == m && $2 == t' "$RESULTS" | wc -l; }
total_failures() { awk -F'\t' -v m="$1" -v t="$2" '$1 == m && $2 == t { s += $6 } END { print s + 0 }' "$RESULTS"; }
# percent A B: (B − A) / A in percent, signed.
percent() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b == b + 0) printf "%+.1f %%", (b - a) / a * 100; else print "—" }'; }
fmt0() { fmt '%.0f' "$1"; }
fmt2() { fmt '%.2f' "$1"; }

MACHINE="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) vCPU, kernel $(uname -r)"
if grep -qw aes /proc/cpuinfo; then MACHINE+=", AES-NI"; else MACHINE+=", no AES-NI"; fi
DOTNET_VERSION="$(dotnet_runtime_version)"
OPENSSL_VERSION="$(openssl version | awk '{ print $2 }')"
COMMAND="tunnel2-load-tests/scripts/tls-speedtest.sh"
[[ "$seconds" == 10 ]] || COMMAND+=" --seconds $seconds"
[[ "$reps" == 5 ]] || COMMAND+=" --reps $reps"
COMMAND+=" --doc"

TABLE="$ART/table.md"
BACKGROUND="$ART/background.md"
ROWS="$ART/rows.md"          # the rows for the speed-test table of the compare section
: >"$ROWS"
{
  echo "| Mode | TLS off Mbit/s | TLS on Mbit/s | Throughput with TLS | CPU s/GiB, TLS off | CPU s/GiB, TLS on | CPU per GiB with TLS | Failed (off / on) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for mode in download upload; do
    off="$(median 4 "$mode" off)"; on="$(median 4 "$mode" on)"
    cpu_off="$(cpu_per_gib "$mode" off)"; cpu_on="$(cpu_per_gib "$mode" on)"
    echo "| $mode | $(fmt0 "$off") | $(fmt0 "$on") | $(percent "$off" "$on") | $(fmt2 "$cpu_off") | $(fmt2 "$cpu_on") | $(percent "$cpu_off" "$cpu_on") | $(total_failures "$mode" off) / $(total_failures "$mode" on) |"
    # shellcheck disable=SC2016  # the backticks are Markdown
    printf '| %s | tunnel, TLS off (separate run) | %s | %s | | %s | `%s`, median of %s; see [TLS on the uplink](%s) |\n' \
      "$mode" "$(fmt0 "$off")" "$(fmt2 "$(median 5 "$mode" off)")" "$(total_failures "$mode" off)" "$COMMAND" "$reps" "$TLS_SECTION_ANCHOR" >>"$ROWS"
    printf '| %s | tunnel, TLS on the uplink | %s | %s | | %s | (same run) %s Mbit/s, %s CPU per GiB vs TLS off |\n' \
      "$mode" "$(fmt0 "$on")" "$(fmt2 "$(median 5 "$mode" on)")" "$(total_failures "$mode" on)" "$(percent "$off" "$on")" "$(percent "$cpu_off" "$cpu_on")" >>"$ROWS"
  done
} >"$TABLE"
{
  echo "| Mode | Runs (off / on) | Other processes, cores (off / on) | Interrupts + softirq, cores (off / on) |"
  echo "|---|---:|---:|---:|"
  for mode in download upload; do
    echo "| $mode | $(count "$mode" off) / $(count "$mode" on) | $(fmt2 "$(median_cores 10 "$mode" off)") / $(fmt2 "$(median_cores 10 "$mode" on)") | $(fmt2 "$(median_cores 11 "$mode" off)") / $(fmt2 "$(median_cores 11 "$mode" on)") |"
  done
} >"$BACKGROUND"

SECTION="$ART/section.md"
{
  echo "$BEGIN_MARK"
  echo "<!-- Generated by tunnel2-load-tests/scripts/tls-speedtest.sh; edit outside the markers. -->"
  echo "$TLS_SECTION_TITLE"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| Date | $STARTED_AT (measurements took ${ELAPSED} s) |"
  echo "| Machine | $MACHINE |"
  echo "| Load average (1/5/15 min) | $LOAD_START at the start, $LOAD_END at the end |"
  echo "| Software | .NET $DOTNET_VERSION, OpenSSL $OPENSSL_VERSION; the TLS endpoint negotiates ${TLS_INFO:-?} with \`openssl s_client\` (self-signed ECDSA P-256 certificate made for the run) |"
  echo "| Code | commit $COMMIT$DIRTY; binaries built $BUILD_INFO |"
  echo "| Setup | one TunnelServer (Production, dev grant): public entry \`http://127.0.0.1:$PUBLIC_PORT\`, uplink endpoints \`http://127.0.0.1:$UPLINK_PORT\` and \`https://127.0.0.1:$TLS_PORT\` (Kestrel:Endpoints); TunnelClient (2 uplinks, the default) started afresh for each leg with \`--server http://127.0.0.1:$UPLINK_PORT\` (TLS off) or \`--server https://127.0.0.1:$TLS_PORT\` and \`Tunnel__ServerCertificateSha256\` (TLS on, pinned); TestBackend on $BACKEND_PORT. Only the uplink differs: the public side and the backend hop are plain HTTP in both legs |"
  echo "| Measurement | \`LoadTests speedtest --mode download\|upload --streams $STREAMS --payload-size $PAYLOAD --duration ${seconds}s --url http://127.0.0.1:$PUBLIC_PORT/session/$SESSION/loadtest/bytes/{size}\` (upload: \`…/loadtest/info\`); TLS off and on alternated, order swapped every repetition, $reps repetitions, medians |"
  echo "| CPU | utime + stime of TunnelServer + TunnelClient (\`/proc/PID/stat\`, sampled at 10 Hz) over the measured seconds 2–$((seconds - 1)) of each call (cores used), divided by the transfer rate of those seconds (GiB/s); median over the calls |"
  echo "| Command | \`$COMMAND\` |"
  echo
  cat "$TABLE"
  echo
  echo "\"Throughput with TLS\" is (on − off) / off of the median Mbit/s: negative is the price of TLS. Everything shares"
  echo "two cores (load generator, TunnelServer, TunnelClient, TestBackend), so the extra CPU of encryption comes straight"
  echo "out of the throughput; on a machine with spare cores the Mbit/s loss is smaller and the CPU per GiB is the number"
  echo "that carries over."
  echo
  echo "What else used the machine during the measured seconds (medians; the same in both legs means the comparison is fair"
  echo "even when the absolute Mbit/s are depressed). Other processes: \`/proc/stat\` user + nice + system + steal minus"
  echo "TunnelServer, TunnelClient, TestBackend and the harness, i.e. whatever else ran on the shared machine. Interrupts +"
  echo "softirq: kernel time outside any process, on loopback mostly the network stack carrying this test's own traffic."
  echo
  cat "$BACKGROUND"
  echo "$END_MARK"
} >"$SECTION"

echo
cat "$TABLE"
echo

if ((doc)); then
  tmp="$DOC.tls-speedtest.$$"
  # 1. The section: between the markers when present; otherwise before "## Not measured yet" (or at the end).
  if replace_section "$DOC" "$SECTION" "$BEGIN_MARK" "$END_MARK"; then
    :
  elif grep -qx '## Not measured yet' "$DOC"; then
    awk -v section="$SECTION" '
      $0 == "## Not measured yet" && !done { while ((getline line < section) > 0) print line; print ""; done = 1 }
      { print }' "$DOC" >"$tmp"
    mv "$tmp" "$DOC"
  else
    { echo; cat "$SECTION"; } >>"$DOC"
  fi
  # 2. The "TLS on the uplink" bullet of "Not measured yet" (it is measured now): the bullet and its indented lines go.
  awk '
    /^\* \*\*TLS on the uplink\*\*/ { skipping = 1; next }
    skipping && /^  / { next }
    { skipping = 0; print }' "$DOC" >"$tmp"
  mv "$tmp" "$DOC"
  # 3. The speed-test table's TLS rows (the TODO placeholder, or this script's rows from an earlier run) become the
  #    measured rows, where the first of them was.
  if grep -q '^| [^|]* | tunnel, TLS ' "$DOC"; then
    awk -v rows="$ROWS" '
      /^\| [^|]* \| tunnel, TLS / { if (!done) { while ((getline line < rows) > 0) print line; done = 1 } next }
      { print }' "$DOC" >"$tmp"
    mv "$tmp" "$DOC"
  else
    log "no TLS row in the speed-test table of $DOC: only the section was written"
  fi
  log "wrote $DOC"
fi
log "artifacts: $ART"
((FAILED_CALLS == 0)) || die "$FAILED_CALLS speedtest call(s) failed or had failed transfers (see $ART/raw)"
