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

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
SESSION=22222222-2222-2222-2222-222222222222
REDIS_PORT="${TUNNEL2_REDIS_PORT:-12079}"
TUNNEL_PORT="${TUNNEL2_TUNNEL_PORT:-12000}"
TCP_PORT="${TUNNEL2_TCP_PORT:-12080}"
READY_ATTEMPTS=60   # × 0.5 s
DOC="$REPO_ROOT/docs/performance.md"
BEGIN_MARK="<!-- redis:begin -->"
END_MARK="<!-- redis:end -->"

die() { echo "redis-bench: $*" >&2; exit 1; }
log() { echo "redis-bench: $*"; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

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
SUDO=""; ((EUID == 0)) || SUDO="sudo"
missing=()
for pkg in redis-server redis-tools curl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]} (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v dotnet >/dev/null || die "dotnet not found: install the .NET 10 SDK"

cd "$REPO_ROOT"
if ((build)); then
  log "dotnet build src/TunnelServer and src/TunnelClient -c Release"
  dotnet build src/TunnelServer/TunnelServer.csproj -c Release -nologo -v quiet
  dotnet build src/TunnelClient/TunnelClient.csproj -c Release -nologo -v quiet
fi

RUN_DIR="$REPO_ROOT/artifacts/redis/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$RUN_DIR/logs" "$RUN_DIR/raw" "$RUN_DIR/redis"
# A copy of the binaries: on a shared checkout someone may rebuild bin/ during the run.
cp -a src/TunnelServer/bin/Release/net10.0 "$RUN_DIR/server"
cp -a src/TunnelClient/bin/Release/net10.0 "$RUN_DIR/client"

# ---------------------------------------------------------------------------------------------------- processes
PIDS=()
NAMES=()
# shellcheck disable=SC2317  # trap handler
stop_all() {
  local i pid n
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    kill -0 "$pid" 2>/dev/null || continue
    log "stopping ${NAMES[$i]} (PID $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((n = 0; n < 20; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap stop_all EXIT
trap 'log interrupted; exit 130' INT TERM

port_free() {
  [[ -z "$(ss -H -ltn "sport = :$1" 2>/dev/null)" ]] || die "port $1 is in use (move it with the environment variables above)"
}

start() {
  local name="$1" dir="$2"; shift 2
  (cd "$dir" && exec "$@") >"$RUN_DIR/logs/$name.log" 2>&1 &
  PIDS+=("$!"); NAMES+=("$name")
  log "started $name (PID $!)"
}

wait_for() {
  local what="$1" n; shift
  for ((n = 0; n < READY_ATTEMPTS; n++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$what not ready after $((READY_ATTEMPTS / 2)) s"
}

port_free "$REDIS_PORT"; port_free "$TUNNEL_PORT"; port_free "$TCP_PORT"
start redis "$RUN_DIR/redis" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$RUN_DIR/redis" --daemonize no --loglevel notice
wait_for redis-server redis-cli -p "$REDIS_PORT" ping

dev_hash=$(grep -o '"Sha256": *"[0-9a-f]*"' src/TunnelServer/appsettings.Development.json | grep -o '[0-9a-f]\{64\}')
start TunnelServer "$RUN_DIR/server" env ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production \
  Tunnel__Tokens__0__Name=dev Tunnel__Tokens__0__Sha256="$dev_hash" Tunnel__Tokens__0__Sessions__0="$SESSION" \
  Tunnel__Tcp__Enabled=true Tunnel__Tcp__PortRangeStart="$TCP_PORT" Tunnel__Tcp__PortRangeEnd="$TCP_PORT" \
  dotnet TunnelServer.dll --urls "http://127.0.0.1:$TUNNEL_PORT"
wait_for TunnelServer curl -fsS "http://127.0.0.1:$TUNNEL_PORT/healthz"

# Development configuration for the dev token and session; no HTTP backend is needed, no status endpoint wanted.
start TunnelClient "$RUN_DIR/client" env DOTNET_ENVIRONMENT=Development Tunnel__StatusUrl= \
  dotnet TunnelClient.dll --server "http://127.0.0.1:$TUNNEL_PORT" --backend http://127.0.0.1:9 \
  --uplinks "$uplinks" --tcp "redis=127.0.0.1:$REDIS_PORT"
wait_for "TunnelClient's TCP service" grep -q "Tunnel2: tcp redis " "$RUN_DIR/logs/TunnelClient.log"
announced="$(grep -o 'Tunnel2: tcp redis [^ ]*' "$RUN_DIR/logs/TunnelClient.log" | head -n1)"
log "$announced"
[[ "$announced" == *":$TCP_PORT" ]] || die "expected the service on port $TCP_PORT: $announced"
wait_for "redis through the tunnel" sh -c "redis-cli -p $TCP_PORT ping | grep -q PONG"

# ---------------------------------------------------------------------------------------------------- runs
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
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
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$((SECONDS - T0))

# ---------------------------------------------------------------------------------------------------- report
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# field: 2 rps, 5 p50, 7 p99 (redis-benchmark 7 --csv: test, rps, avg, min, p50, p95, p99, max)
value() { # path depth test field
  cat "$RUN_DIR/raw/$1-P$2-"*.csv | awk -F'","' -v t="\"$3" -v f="$4" '$1 == t { gsub(/"/, "", $f); print $f }' | median
}
fmt_rps() { awk -v v="$1" 'BEGIN { printf "%\047.0f", v }'; }

MACHINE="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) vCPU, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
REDIS_VERSION="$(redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2)"
DOTNET_VERSION="$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }')"
COMMIT="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
DIRTY=""; [[ -n "$(git -C "$REPO_ROOT" status --porcelain -- src 2>/dev/null)" ]] && DIRTY=" + uncommitted src changes"
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
  if grep -qxF "$BEGIN_MARK" "$DOC" && grep -qxF "$END_MARK" "$DOC"; then
    awk -v section="$SECTION" -v begin="$BEGIN_MARK" -v end="$END_MARK" '
      $0 == begin && !done { while ((getline line < section) > 0) print line; skipping = 1; done = 1; next }
      $0 == end && skipping { skipping = 0; next }
      !skipping { print }' "$DOC" >"$DOC.tmp.$$"
    mv "$DOC.tmp.$$" "$DOC"
  else
    { echo; cat "$SECTION"; } >>"$DOC"
  fi
  log "wrote $DOC"
fi
log "artifacts: $RUN_DIR"
