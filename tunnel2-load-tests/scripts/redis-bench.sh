#!/usr/bin/env bash
# Redis through a raw TCP tunnel: redis-benchmark against redis-server directly and through TunnelServer's TCP service
# port (TunnelClient --tcp redis=…), alternating the two paths and repeating, then a Markdown table of the medians;
# with --doc it goes into docs/performance.md between <!-- redis:begin --> and <!-- redis:end --> (appended at the end
# when the markers are absent; nothing else in the file changes).
#
#   tunnel2-load-tests/scripts/redis-bench.sh [options]
#
# Per path and pipeline depth (1 and 16):
#   redis-benchmark -h 127.0.0.1 -p <port> -t ping,set,get -n <requests> -c <clients> -P <depth> --csv
#
# Options:
#   --requests N    requests per test (default 100000)
#   --clients N     parallel connections (default 50)
#   --repeat N      repetitions per path and depth, alternated; the table shows medians (default 3)
#   --uplinks N     TunnelClient uplinks (default 2, the product default)
#   --no-build      use the existing Release binaries
#   --doc           write the section into docs/performance.md
#   -h, --help      this text
# Environment: TUNNEL2_REDIS_PORT (12079), TUNNEL2_TUNNEL_PORT (12000), TUNNEL2_TCP_PORT (12080, the service port).
#
# Installs redis-server and redis-tools (Debian) when missing. Everything runs on 127.0.0.1; everything started is
# stopped on exit, also on Ctrl-C. Artifacts: artifacts/redis/<timestamp>/ (CSV of every run, logs, the section).
# Exit code: 0 when every benchmark ran, 1 when the script failed, 130 when interrupted.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
REDIS_PORT="${TUNNEL2_REDIS_PORT:-12079}"
TUNNEL_PORT="${TUNNEL2_TUNNEL_PORT:-12000}"
TCP_PORT="${TUNNEL2_TCP_PORT:-12080}"
DOC="$REPO_ROOT/docs/performance.md"
BEGIN_MARK="<!-- redis:begin -->"
END_MARK="<!-- redis:end -->"
PORT_IN_USE="port {port} is in use (move it with the environment variables above)"

requests=100000
clients=50
repeat=3
uplinks=2
build=1
doc=0
while (($#)); do
  case "$1" in
    --requests) shift; requests="${1:?--requests needs a value}" ;;
    --clients) shift; clients="${1:?--clients needs a value}" ;;
    --repeat) shift; repeat="${1:?--repeat needs a value}" ;;
    --uplinks) shift; uplinks="${1:?--uplinks needs a value}" ;;
    --no-build) build=0 ;;
    --doc) doc=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done

# ---------------------------------------------------------------------------------------------------- tools
apt_install_missing redis-server redis-tools curl
command -v dotnet >/dev/null || die "dotnet not found: install the .NET 10 SDK"

cd "$REPO_ROOT"
if ((build)); then
  log "dotnet build src/TunnelServer and src/TunnelClient -c Release"
  dotnet build src/TunnelServer/TunnelServer.csproj -c Release -nologo -v quiet
  dotnet build src/TunnelClient/TunnelClient.csproj -c Release -nologo -v quiet
fi

RUN_DIR="$(new_run_dir "$REPO_ROOT/artifacts/redis" "$(date -u +%Y%m%d-%H%M%S)")"
mkdir -p "$RUN_DIR/logs" "$RUN_DIR/raw" "$RUN_DIR/redis"
LOG_DIR="$RUN_DIR/logs"
snapshot src/TunnelServer/bin/Release/net10.0 "$RUN_DIR/server" >/dev/null
snapshot src/TunnelClient/bin/Release/net10.0 "$RUN_DIR/client" >/dev/null

# ---------------------------------------------------------------------------------------------------- processes
install_traps

require_free "$REDIS_PORT"; require_free "$TUNNEL_PORT"; require_free "$TCP_PORT"
start redis "$RUN_DIR/redis" -- redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$RUN_DIR/redis" --daemonize no --loglevel notice
wait_until redis-server "$LAST_PID" "" redis-cli -p "$REDIS_PORT" ping

dev_grant_env
start TunnelServer "$RUN_DIR/server" "${DEV_GRANT_ENV[@]}" \
  Tunnel__Tcp__Enabled=true Tunnel__Tcp__PortRangeStart="$TCP_PORT" Tunnel__Tcp__PortRangeEnd="$TCP_PORT" \
  -- dotnet TunnelServer.dll --urls "http://127.0.0.1:$TUNNEL_PORT"
wait_until TunnelServer "$LAST_PID" "" http_ok "http://127.0.0.1:$TUNNEL_PORT/healthz"

# Development configuration for the dev token and session; no HTTP backend is needed, no status endpoint wanted.
start TunnelClient "$RUN_DIR/client" DOTNET_ENVIRONMENT=Development Tunnel__StatusUrl= \
  -- dotnet TunnelClient.dll --server "http://127.0.0.1:$TUNNEL_PORT" --backend http://127.0.0.1:9 \
  --uplinks "$uplinks" --tcp "redis=127.0.0.1:$REDIS_PORT"
wait_until "TunnelClient's TCP service" "$LAST_PID" "" grep -q "Tunnel2: tcp redis " "$RUN_DIR/logs/TunnelClient.log"
announced="$(grep -o 'Tunnel2: tcp redis [^ ]*' "$RUN_DIR/logs/TunnelClient.log" | head -n1)"
log "$announced"
[[ "$announced" == *":$TCP_PORT" ]] || die "expected the service on port $TCP_PORT: $announced"
wait_until "redis through the tunnel" "" "" sh -c "redis-cli -p $TCP_PORT ping | grep -q PONG"

# ---------------------------------------------------------------------------------------------------- runs
LOAD_START="$(load_average)"
STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"
T0=$SECONDS
for ((rep = 1; rep <= repeat; rep++)); do
  for depth in 1 16; do
    for path in direct tunnel; do
      port=$REDIS_PORT; [[ "$path" == tunnel ]] && port=$TCP_PORT
      out="$RUN_DIR/raw/$path-P$depth-$rep.csv"
      log "run $rep/$repeat: $path, -P $depth"
      timeout 600 redis-benchmark -h 127.0.0.1 -p "$port" -t ping,set,get -n "$requests" -c "$clients" -P "$depth" --csv >"$out"
      redis-cli -p "$REDIS_PORT" flushall >/dev/null
    done
  done
done
LOAD_END="$(load_average)"
ELAPSED=$((SECONDS - T0))

# ---------------------------------------------------------------------------------------------------- report
# field: 2 rps, 5 p50, 7 p99 (redis-benchmark 7 --csv: test, rps, avg, min, p50, p95, p99, max)
value() { # path depth test field
  cat "$RUN_DIR/raw/$1-P$2-"*.csv | awk -F'","' -v t="\"$3" -v f="$4" '$1 == t { gsub(/"/, "", $f); print $f }' | median_of nan
}
fmt_rps() { fmt "%'.0f" "$1"; }

MACHINE="$(machine_info)"
REDIS_VERSION="$(redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2)"
DOTNET_VERSION="$(dotnet_runtime_version)"
commit_info
SECTION="$RUN_DIR/section.md"
{
  echo "$BEGIN_MARK"
  echo "<!-- Generated by tunnel2-load-tests/scripts/redis-bench.sh; edit outside the markers. -->"
  echo "## Redis through a raw TCP tunnel (redis-benchmark)"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| Date | $STARTED (benchmarks took ${ELAPSED} s) |"
  echo "| Machine | $MACHINE |"
  echo "| Load average (1/5/15 min) | $LOAD_START at the start, $LOAD_END at the end |"
  echo "| Software | redis-server / redis-benchmark $REDIS_VERSION, .NET $DOTNET_VERSION; commit $COMMIT$DIRTY |"
  echo "| Direct | \`redis-benchmark -h 127.0.0.1 -p $REDIS_PORT -t ping,set,get -n $requests -c $clients -P 1\` (and \`-P 16\`) against \`redis-server --save '' --appendonly no\` |"
  echo "| Tunnel | the same against TunnelServer's TCP service port $TCP_PORT (\`Tunnel__Tcp__Enabled=true\`); TunnelClient \`--tcp redis=127.0.0.1:$REDIS_PORT --uplinks $uplinks\`; each of the $clients connections is one tunnel stream |"
  echo "| Method | paths alternated, $repeat repetitions each, medians; all processes on this one machine |"
  for depth in 1 16; do
    echo
    if ((depth == 1)); then echo "**One command per round trip** (\`-P 1\`)"; else echo "**Pipelined, 16 commands per round trip** (\`-P 16\`)"; fi
    echo
    echo "| Test | direct req/s | tunnel req/s | tunnel / direct | direct p50 / p99 (ms) | tunnel p50 / p99 (ms) |"
    echo "|---|---:|---:|---:|---:|---:|"
    for test in PING_INLINE PING_MBULK SET GET; do
      d_rps=$(value direct "$depth" "$test" 2); t_rps=$(value tunnel "$depth" "$test" 2)
      ratio=$(awk -v a="$t_rps" -v b="$d_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "—" }')
      echo "| $test | $(fmt_rps "$d_rps") | $(fmt_rps "$t_rps") | $ratio | $(value direct "$depth" "$test" 5) / $(value direct "$depth" "$test" 7) | $(value tunnel "$depth" "$test" 5) / $(value tunnel "$depth" "$test" 7) |"
    done
  done
  echo "$END_MARK"
} >"$SECTION"
cat "$SECTION"

if ((doc)); then
  write_doc_section "$DOC" "$SECTION" "$BEGIN_MARK" "$END_MARK"
  log "wrote $DOC"
fi
log "artifacts: $RUN_DIR"
