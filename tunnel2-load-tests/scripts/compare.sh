#!/usr/bin/env bash
# Measures TestBackend directly and through four one-box proxies/tunnels in ONE run, alternating paths and repeating
# each measurement, and writes the medians into docs/performance.md (between <!-- compare:begin --> and
# <!-- compare:end -->) with PNG plots:
#
#   direct  TestBackend                                   http://127.0.0.1:12007
#   tunnel  TunnelServer → uplink → TunnelClient → TB     http://127.0.0.1:12000/session/<id>
#   nginx   nginx (keepalive upstream) → TB               http://127.0.0.1:12011
#   yarp    YarpBaseline (YARP HttpForwarder) → TB        http://127.0.0.1:12010
#   ssh     sshd -R 12012 → ssh client → TB               http://127.0.0.1:12012   (OpenSSH reverse tunnel)
#
#   tunnel2-load-tests/scripts/compare.sh [--quick] [options]
#
# Measurements (each path; alternated across paths; medians over the repetitions):
#   ceiling   closed loop: wrk -t1 -c50 -d10s /loadtest/get
#   latency   open loop:   LoadTests rate --rps 200|1000|2000 --duration 10s --warm-up 3s (CO-corrected p50/p90/p99)
#   bulk      one 1 GiB download (/loadtest/bytes/N) and one 1 GiB upload (PUT /loadtest/info, read and hashed)
#             with curl, with the peak RSS growth of the proxy processes sampled at 10 Hz
#   alloc     managed bytes per request in TunnelServer, TunnelClient, YarpBaseline, TestBackend (LoadTests alloc)
#   speed     LoadTests speedtest, 4 streams × 64 MiB requests, download and upload, direct vs tunnel
#
# Options:
#   --quick          1 repetition, 5 s runs, 2 s warm-ups, 256 MiB transfers, 20,000 alloc requests (≈4 min);
#                    writes docs/performance.md only with --doc.
#   --reuse          use TestBackend / TunnelServer / TunnelClient already running on 12007 / 12000 (PIDs from
#                    the ports, TunnelClient from `pgrep -f TunnelClient.dll`, or TUNNEL2_SERVER_PID,
#                    TUNNEL2_CLIENT_PID, TUNNEL2_BACKEND_PID); anything not running is started.
#   --paths LIST     subset of direct,tunnel,nginx,yarp,ssh (direct is always measured: it is the reference).
#   --skip LIST      leave out measurements: ceiling,latency,bulk,alloc,speed.
#   --trace          also record 10 s CPU profiles of TunnelServer and TunnelClient under wrk (dotnet-trace
#                    collect-linux, perf-based; falls back to managed thread-time sampling) and put the top frames
#                    into the doc.
#   --no-build       use the existing Release binaries.
#   --doc / --no-doc write (or not) docs/performance.md and docs/img/compare-*.png.
#   -h, --help       this text.
# Environment: TUNNEL2_BACKEND_PORT, TUNNEL2_TUNNEL_PORT, TUNNEL2_YARP_PORT, TUNNEL2_NGINX_PORT, TUNNEL2_SSH_PORT,
# TUNNEL2_SSHD_PORT move 12007, 12000, 12010, 12011, 12012, 12022 (TunnelClient is then pointed at them by flags).
#
# Everything runs on 127.0.0.1 and everything started is stopped on exit, also on Ctrl-C. Artifacts (raw JSON,
# wrk output, generated nginx/sshd configs and keys, logs, plots): artifacts/compare/<timestamp>[-quick]/.
# Exit code: 0 when every measurement ran, 1 when the script failed, 130 when interrupted.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# The contract ports (TunnelClient's Development config); each can be moved, e.g. to run beside another stack.
BACKEND_PORT="${TUNNEL2_BACKEND_PORT:-12007}"
TUNNEL_PORT="${TUNNEL2_TUNNEL_PORT:-12000}"
YARP_PORT="${TUNNEL2_YARP_PORT:-12010}"
NGINX_PORT="${TUNNEL2_NGINX_PORT:-12011}"
SSH_FORWARD_PORT="${TUNNEL2_SSH_PORT:-12012}"
SSHD_PORT="${TUNNEL2_SSHD_PORT:-12022}"
ALL_PATHS=(direct tunnel nginx yarp ssh)
READY_LOG=1
STOP_CHILDREN=1      # sshd's per-connection processes outlive the listener; they were started for this run, so they go too
PORT_IN_USE="port {port} is already in use ({owner}); stop it, or use --reuse for 12007/12000"

# ---------------------------------------------------------------------------------------------------- arguments
quick=0
reuse=0
build=1
trace=0
doc=""
paths_arg=""
skip_arg=""
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --reuse) reuse=1 ;;
    --no-build) build=0 ;;
    --trace) trace=1 ;;
    --doc) doc=1 ;;
    --no-doc) doc=0 ;;
    --paths) shift; (($#)) || die "--paths needs a value"; paths_arg="$1" ;;
    --paths=*) paths_arg="${1#*=}" ;;
    --skip) shift; (($#)) || die "--skip needs a value"; skip_arg="$1" ;;
    --skip=*) skip_arg="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done
[[ -n "$doc" ]] || doc=$((1 - quick))

PATHS=(direct)
if [[ -n "$paths_arg" ]]; then
  for p in ${paths_arg//,/ }; do
    [[ " ${ALL_PATHS[*]} " == *" $p "* ]] || die "unknown path '$p' (direct, tunnel, nginx, yarp, ssh)"
    [[ "$p" == direct ]] || PATHS+=("$p")
  done
else
  PATHS=("${ALL_PATHS[@]}")
fi
for s in ${skip_arg//,/ }; do
  [[ " ceiling latency bulk alloc speed " == *" $s "* ]] || die "unknown measurement '$s' (ceiling, latency, bulk, alloc, speed)"
done
wants() { [[ " ${PATHS[*]} " == *" $1 "* ]]; }
measures() { [[ ",$skip_arg," != *",$1,"* ]]; }

if ((quick)); then
  REPS=1; RUN_SECONDS=5; WARMUP=2s; RATES=(200 1000 2000); BULK_BYTES=$((256 * 1024 * 1024)); ALLOC_REQUESTS=20000
else
  REPS=3; RUN_SECONDS=10; WARMUP=3s; RATES=(200 1000 2000); BULK_BYTES=$((1024 * 1024 * 1024)); ALLOC_REQUESTS=100000
fi
SPEED_STREAMS=4
SPEED_PAYLOAD=64MiB
# Hard cap on the whole run: the planned time plus a generous margin (the watchdog below enforces it).
HARD_CAP_SECONDS=$((quick ? 900 : 2700))

# ---------------------------------------------------------------------------------------------------- tools
command -v dotnet >/dev/null || die "dotnet not found: install the .NET 10 SDK"
packages=(wrk curl jq iproute2 procps)
wants nginx && packages+=(nginx)
wants ssh && packages+=(openssh-server openssh-client)
apt_install_missing "${packages[@]}"
if ((trace)); then
  DOTNET_TRACE="$(command -v dotnet-trace || echo "$HOME/.dotnet/tools/dotnet-trace")"
  if [[ ! -x "$DOTNET_TRACE" ]]; then
    log "installing dotnet-trace (dotnet tool install -g)"
    dotnet tool install -g dotnet-trace >/dev/null
    DOTNET_TRACE="$HOME/.dotnet/tools/dotnet-trace"
  fi
fi

# ---------------------------------------------------------------------------------------------------- build
cd "$REPO_ROOT"
if ((build)); then
  log "dotnet build Tunnel2.sln -c Release"
  dotnet build Tunnel2.sln -c Release -nologo -v quiet
  # Projects the solution does not list (yet) are built on their own.
  for project in tunnel2-load-tests/LoadTests/LoadTests.csproj tunnel2-load-tests/YarpBaseline/YarpBaseline.csproj; do
    grep -q "$(basename "$project")" Tunnel2.sln || dotnet build "$project" -c Release -nologo -v quiet
  done
fi
BACKEND_DIR=tunnel2-load-tests/TestBackend/bin/Release/net10.0
SERVER_DIR=src/TunnelServer/bin/Release/net10.0
CLIENT_DIR=src/TunnelClient/bin/Release/net10.0
YARP_DIR=tunnel2-load-tests/YarpBaseline/bin/Release/net10.0
HARNESS_DLL="$REPO_ROOT/tunnel2-load-tests/LoadTests/bin/Release/net10.0/LoadTests.dll"
for f in "$HARNESS_DLL" "$BACKEND_DIR/TestBackend.dll"; do [[ -f "$f" ]] || die "$f missing (build failed?)"; done
if wants tunnel; then
  [[ -f "$SERVER_DIR/TunnelServer.dll" && -f "$CLIENT_DIR/TunnelClient.dll" ]] || die "TunnelServer/TunnelClient binaries missing"
fi
if wants yarp; then [[ -f "$YARP_DIR/YarpBaseline.dll" ]] || die "$YARP_DIR/YarpBaseline.dll missing"; fi
# The binaries measured may be newer than the last commit (someone building uncommitted work): say when they were built.
BUILD_INFO="TunnelServer.dll $(date -u -r "$SERVER_DIR/TunnelServer.dll" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || echo '—'), TunnelClient.dll $(date -u -r "$CLIENT_DIR/TunnelClient.dll" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || echo '—')"

MODE_SUFFIX=""; ((quick)) && MODE_SUFFIX="-quick"
RUN_ID="$(date -u +%Y%m%d-%H%M%S)$MODE_SUFFIX"
ART="$REPO_ROOT/artifacts/compare/$RUN_ID"
mkdir -p "$ART/logs" "$ART/raw" "$ART/plots"
LOG_DIR="$ART/logs"

# Run from a copy of the binaries: on a shared checkout someone may rebuild or clean bin/ during the run, and the next
# harness call or a restarted process would then load another build, or nothing. The .NET processes start through a
# link to their apphost named t2-compare-*, so their command lines are told apart from everyone else's
# (`pkill -f TunnelServer.dll` elsewhere on a shared machine must not end a measurement).
link_apphost() { ln -sf "$2" "$1/t2-compare-$3"; }
BACKEND_DIR="$(snapshot "$BACKEND_DIR" "$ART/bin/backend")"
link_apphost "$BACKEND_DIR" TestBackend backend
if wants tunnel; then
  SERVER_DIR="$(snapshot "$SERVER_DIR" "$ART/bin/server")"
  CLIENT_DIR="$(snapshot "$CLIENT_DIR" "$ART/bin/client")"
  link_apphost "$SERVER_DIR" TunnelServer server
  link_apphost "$CLIENT_DIR" TunnelClient client
fi
if wants yarp; then
  YARP_DIR="$(snapshot "$YARP_DIR" "$ART/bin/yarp")"
  link_apphost "$YARP_DIR" YarpBaseline yarp
fi
HARNESS_DLL="$(snapshot "$(dirname "$HARNESS_DLL")" "$ART/bin/harness")/LoadTests.dll"
RESULTS="$ART/results.tsv"      # kind  path  key  rep  value
COMMANDS="$ART/commands.tsv"    # kind  path  command (one representative command per row of the doc)
: >"$RESULTS"
: >"$COMMANDS"
LOAD_START="$(load_average)"
MACHINE="$(machine_info)"
# wrk -v exits 1 after printing its version; nginx -v prints to stderr.
SOFTWARE=".NET $(dotnet_runtime_version)"
SOFTWARE+=", nginx $( (nginx -v 2>&1 || true) | sed 's/.*nginx\///'), $(ssh -V 2>&1 | cut -d, -f1) (default cipher)"
SOFTWARE+=", wrk $( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }'), curl $(curl -V | awk 'NR == 1 { print $2 }')"
commit_info
CODE="commit $COMMIT$DIRTY"
STARTED_AT="$(date -u '+%Y-%m-%d %H:%M UTC')"
SECONDS=0

# ---------------------------------------------------------------------------------------------------- processes
SAMPLER_PID=""
# shellcheck disable=SC2317  # called from on_exit
cleanup_first() { [[ -z "$SAMPLER_PID" ]] || kill "$SAMPLER_PID" 2>/dev/null || true; }
INTERRUPT_MESSAGE="interrupted (or the ${HARD_CAP_SECONDS} s hard cap was reached)"
install_traps
# The whole run is bounded: after the hard cap the script receives SIGTERM and cleans up.
start_watchdog "$HARD_CAP_SECONDS"

# Every process is started by a function, so one that disappears mid-run (another user's `pkill -f TunnelServer.dll`
# on a shared machine) is restarted before the next measurement; restarts are counted and reported.
OWNED=" "          # names of the processes this run started (and may restart)
RESTARTS=()        # one name per restart

start_backend() {
  start TestBackend "$BACKEND_DIR" -- ./t2-compare-backend --urls "http://127.0.0.1:$BACKEND_PORT"
  BACKEND_PID=$LAST_PID
  wait_ready TestBackend "http://127.0.0.1:$BACKEND_PORT/loadtest/ping" "$BACKEND_PID"
}

# Production, with the dev grant from the environment (lib/common.sh): no developer exception page on the measured path.
start_server() {
  dev_grant_env
  start TunnelServer "$SERVER_DIR" "${DEV_GRANT_ENV[@]}" -- ./t2-compare-server --urls "http://127.0.0.1:$TUNNEL_PORT"
  SERVER_PID=$LAST_PID
  wait_ready TunnelServer "http://127.0.0.1:$TUNNEL_PORT/healthz" "$SERVER_PID"
}

start_client() {
  # The Development config (dev token, session) with the server and the /loadtest route given explicitly, so moved
  # ports work too.
  start TunnelClient "$CLIENT_DIR" DOTNET_ENVIRONMENT=Development -- ./t2-compare-client \
    --server "http://127.0.0.1:$TUNNEL_PORT" --route "/loadtest=http://127.0.0.1:$BACKEND_PORT"
  CLIENT_PID=$LAST_PID
  wait_ready TunnelClient "http://127.0.0.1:$TUNNEL_PORT/session/$SESSION/loadtest/ping" "$CLIENT_PID"
}

start_yarp() {
  start YarpBaseline "$YARP_DIR" -- ./t2-compare-yarp --urls "http://127.0.0.1:$YARP_PORT" \
    --destination "http://127.0.0.1:$BACKEND_PORT"
  YARP_PID=$LAST_PID
  wait_ready YarpBaseline "http://127.0.0.1:$YARP_PORT/loadtest/ping" "$YARP_PID"
}

# nginx: one hop, keep-alive upstream, its own prefix, config and logs under the run folder, not a daemon.
write_nginx_config() {
  NGINX_DIR="$ART/nginx"
  mkdir -p "$NGINX_DIR/temp"
  cat >"$NGINX_DIR/nginx.conf" <<EOF
# Generated by compare.sh. The reference's nginx hop (performance.md §4.1), plus streaming both ways for bulk bodies.
worker_processes 2;
daemon off;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGINX_DIR/temp/client_body;
  proxy_temp_path $NGINX_DIR/temp/proxy;
  fastcgi_temp_path $NGINX_DIR/temp/fastcgi;
  uwsgi_temp_path $NGINX_DIR/temp/uwsgi;
  scgi_temp_path $NGINX_DIR/temp/scgi;
  upstream testbackend {
    server 127.0.0.1:$BACKEND_PORT;
    keepalive 128;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://testbackend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Stream bodies as the tunnel and YARP do, with YARP's 64 KiB copy buffer, instead of spooling to disk.
      proxy_buffering off;
      proxy_buffer_size 64k;
      proxy_buffers 4 64k;
      proxy_busy_buffers_size 128k;
      proxy_request_buffering off;
      client_max_body_size 0;
    }
  }
}
EOF
}

start_nginx() {
  start nginx "$NGINX_DIR" -- nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log"
  NGINX_PID=$LAST_PID
  wait_ready nginx "http://127.0.0.1:$NGINX_PORT/loadtest/ping" "$NGINX_PID"
}

# ssh -R: a private sshd (own host key, config, authorized_keys) and a reverse forward from it to TestBackend.
write_ssh_config() {
  SSH_DIR="$ART/ssh"
  mkdir -p "$SSH_DIR"
  chmod 700 "$SSH_DIR"
  SSH_USER="$(id -un)"
  ssh-keygen -q -t ed25519 -N '' -C compare-host -f "$SSH_DIR/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C compare-client -f "$SSH_DIR/client_ed25519"
  cp "$SSH_DIR/client_ed25519.pub" "$SSH_DIR/authorized_keys"
  chmod 600 "$SSH_DIR/authorized_keys"
  cat >"$SSH_DIR/sshd_config" <<EOF
# Generated by compare.sh: a private sshd for the reverse-tunnel baseline. Loopback only, this key only.
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSH_DIR/host_ed25519
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
AllowUsers $SSH_USER
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowTcpForwarding remote
GatewayPorts no
PermitTTY no
X11Forwarding no
LogLevel ERROR
EOF
  # sshd running as root needs its privilege-separation directory; the package creates it only when the service
  # starts, which policy-rc.d may have prevented. Creating the empty runtime directory changes no configuration.
  if ((EUID == 0)) && [[ ! -d /run/sshd ]]; then
    mkdir -p /run/sshd
    chmod 0755 /run/sshd
  fi
  /usr/sbin/sshd -t -f "$SSH_DIR/sshd_config" || die "the generated sshd_config does not validate"
}

start_sshd() {
  local n
  start sshd "$SSH_DIR" -- /usr/sbin/sshd -D -e -f "$SSH_DIR/sshd_config"
  SSHD_PID=$LAST_PID
  for ((n = 0; n < READY_ATTEMPTS; n++)); do
    [[ -n "$(port_owner "$SSHD_PORT")" ]] && return 0
    kill -0 "$SSHD_PID" 2>/dev/null || { cat "$ART/logs/sshd.log" >&2; die "sshd exited"; }
    sleep 0.5
  done
  die "sshd not listening on $SSHD_PORT after $((READY_ATTEMPTS / 2)) s"
}

start_ssh_client() {
  local command=(ssh -F /dev/null -N -R "127.0.0.1:$SSH_FORWARD_PORT:127.0.0.1:$BACKEND_PORT" -p "$SSHD_PORT"
    -i "$SSH_DIR/client_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no
    -o UserKnownHostsFile=/dev/null -o ExitOnForwardFailure=yes -o ServerAliveInterval=30 -o LogLevel=ERROR
    "$SSH_USER@127.0.0.1")
  start ssh-client "$SSH_DIR" -- "${command[@]}"
  SSH_PID=$LAST_PID
  wait_ready ssh-client "http://127.0.0.1:$SSH_FORWARD_PORT/loadtest/ping" "$SSH_PID"
}

# revive NAME PID START_FUNCTION: restarts a process this run started when it has gone.
revive() {
  local name="$1" pid="$2" starter="$3"
  kill -0 "$pid" 2>/dev/null && return 0
  [[ "$OWNED" == *" $name "* ]] || die "$name (PID $pid, not started by this run) has gone"
  log "WARNING: $name (PID $pid) has gone (stopped from outside?); restarting it"
  RESTARTS+=("$name")
  "$starter"
}

# ensure_path PATH: every process the path needs is running (restarted if it was not).
ensure_path() {
  revive TestBackend "$BACKEND_PID" start_backend
  case "$1" in
    tunnel)
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        revive TunnelServer "$SERVER_PID" start_server
        # A fresh client rather than waiting out the old one's reconnect backoff (up to 30 s).
        if [[ "$OWNED" == *" TunnelClient "* ]]; then
          stop_pid TunnelClient "$CLIENT_PID"
          start_client
        fi
      fi
      revive TunnelClient "$CLIENT_PID" start_client ;;
    yarp) revive YarpBaseline "$YARP_PID" start_yarp ;;
    nginx) revive nginx "$NGINX_PID" start_nginx ;;
    ssh)
      revive sshd "$SSHD_PID" start_sshd
      revive ssh-client "$SSH_PID" start_ssh_client ;;
  esac
}

# TestBackend.
if ((reuse)) && [[ -n "$(port_owner "$BACKEND_PORT")" ]]; then
  BACKEND_PID="${TUNNEL2_BACKEND_PID:-$(port_pid "$BACKEND_PORT")}"
  log "reusing TestBackend (PID $BACKEND_PID)"
else
  require_free "$BACKEND_PORT"
  OWNED+="TestBackend "
  start_backend
fi

# TunnelServer + TunnelClient.
if wants tunnel; then
  if ((reuse)) && [[ -n "$(port_owner "$TUNNEL_PORT")" ]]; then
    SERVER_PID="${TUNNEL2_SERVER_PID:-$(port_pid "$TUNNEL_PORT")}"
    log "reusing TunnelServer (PID $SERVER_PID)"
  else
    require_free "$TUNNEL_PORT"
    OWNED+="TunnelServer "
    start_server
  fi
  client_pids="$(pgrep -f 'TunnelClient\.dll' || true)"
  if ((reuse)) && { [[ -n "${TUNNEL2_CLIENT_PID:-}" ]] || [[ -n "$client_pids" ]]; }; then
    CLIENT_PID="${TUNNEL2_CLIENT_PID:-$client_pids}"
    [[ "$CLIENT_PID" =~ ^[0-9]+$ ]] || die "several TunnelClient processes ($client_pids): set TUNNEL2_CLIENT_PID"
    log "reusing TunnelClient (PID $CLIENT_PID)"
    wait_ready TunnelClient "http://127.0.0.1:$TUNNEL_PORT/session/$SESSION/loadtest/ping" "$CLIENT_PID"
  else
    OWNED+="TunnelClient "
    start_client
  fi
fi

if wants yarp; then
  require_free "$YARP_PORT"
  OWNED+="YarpBaseline "
  start_yarp
fi

if wants nginx; then
  require_free "$NGINX_PORT"
  OWNED+="nginx "
  write_nginx_config
  start_nginx
fi

if wants ssh; then
  require_free "$SSHD_PORT"
  require_free "$SSH_FORWARD_PORT"
  OWNED+="sshd ssh-client "
  write_ssh_config
  start_sshd
  start_ssh_client
fi

base_url() {
  case "$1" in
    direct) echo "http://127.0.0.1:$BACKEND_PORT" ;;
    tunnel) echo "http://127.0.0.1:$TUNNEL_PORT/session/$SESSION" ;;
    nginx) echo "http://127.0.0.1:$NGINX_PORT" ;;
    yarp) echo "http://127.0.0.1:$YARP_PORT" ;;
    ssh) echo "http://127.0.0.1:$SSH_FORWARD_PORT" ;;
  esac
}

# Processes whose RSS is watched during bulk transfers, as "role=pid" words.
proxy_processes() {
  local pid
  case "$1" in
    direct) echo "TestBackend=$BACKEND_PID" ;;
    tunnel) echo "TunnelServer=$SERVER_PID TunnelClient=$CLIENT_PID" ;;
    yarp) echo "YarpBaseline=$YARP_PID" ;;
    nginx) for pid in $(pgrep -P "$NGINX_PID"); do echo -n "nginx-worker=$pid "; done ;;
    ssh)
      echo -n "ssh=$SSH_PID "
      for pid in $(pgrep -P "$SSHD_PID"); do
        echo -n "sshd=$pid "
        for child in $(pgrep -P "$pid" || true); do echo -n "sshd=$child "; done
      done ;;
  esac
}

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }
command_for() { grep -q "^$1	$2	" "$COMMANDS" || printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$COMMANDS"; }
harness() { dotnet "$HARNESS_DLL" "$@"; }

log "paths: ${PATHS[*]}; repetitions: $REPS; runs: ${RUN_SECONDS}s; artifacts: $ART"
log "load average at start: $LOAD_START"

# ---------------------------------------------------------------------------------------------------- (a) ceiling
if measures ceiling; then
  for ((rep = 1; rep <= REPS; rep++)); do
    for path in "${PATHS[@]}"; do
      ensure_path "$path"
      url="$(base_url "$path")/loadtest/get"
      out="$ART/raw/wrk-$path-$rep.txt"
      cmd="wrk -t1 -c50 -d${RUN_SECONDS}s --latency $url"
      timeout $((RUN_SECONDS + 30)) wrk -t1 -c50 -d"${RUN_SECONDS}s" --latency "$url" >"$out" 2>&1 || true
      rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
      p50="$(awk '$1 == "50%" {print $2}' "$out")"
      p99="$(awk '$1 == "99%" {print $2}' "$out")"
      errors="$(awk '/Non-2xx|Socket errors/ {print}' "$out" | tr '\n' ' ')"
      [[ -n "$rps" ]] || { log "wrk failed on $path: $(tail -n 3 "$out")"; continue; }
      record ceiling "$path" rps "$rep" "$rps"
      # wrk prints 812.00us / 1.23ms / 1.01s: normalise to ms.
      record ceiling "$path" p50 "$rep" "$(awk -v v="$p50" 'BEGIN { u = v; gsub(/[0-9.]/, "", u); n = v + 0; print (u == "us" ? n / 1000 : u == "s" ? n * 1000 : n) }')"
      record ceiling "$path" p99 "$rep" "$(awk -v v="$p99" 'BEGIN { u = v; gsub(/[0-9.]/, "", u); n = v + 0; print (u == "us" ? n / 1000 : u == "s" ? n * 1000 : n) }')"
      command_for ceiling "$path" "$cmd"
      log "ceiling  $path rep $rep: $rps RPS (p50 $p50, p99 $p99) $errors"
    done
  done
fi

# ---------------------------------------------------------------------------------------------------- (b) latency
if measures latency; then
  for ((rep = 1; rep <= REPS; rep++)); do
    for rate in "${RATES[@]}"; do
      for path in "${PATHS[@]}"; do
        ensure_path "$path"
        url="$(base_url "$path")/loadtest/get"
        json="$ART/raw/rate-$rate-$path-$rep.json"
        cmd="LoadTests rate --url $url --rps $rate --duration ${RUN_SECONDS}s --warm-up $WARMUP"
        timeout $((RUN_SECONDS + 120)) dotnet "$HARNESS_DLL" rate --url "$url" --rps "$rate" --duration "${RUN_SECONDS}s" \
          --warm-up "$WARMUP" --live off --threshold 'http_req_failed:rate==0' --json "$json" >"$ART/raw/rate-$rate-$path-$rep.log" 2>&1 || true
        if [[ ! -s "$json" ]]; then
          log "latency  $path $rate RPS rep $rep: no result ($(tail -n 2 "$ART/raw/rate-$rate-$path-$rep.log" | tr '\n' ' '))"
          continue
        fi
        read -r p50 p90 p99 failed requests < <(jq -r '.targetTotals[0] | "\(.latency.p50Ms) \(.latency.p90Ms) \(.latency.p99Ms) \(.failed) \(.requests)"' "$json")
        for key in p50 p90 p99 failed; do record "rate$rate" "$path" "$key" "$rep" "${!key}"; done
        command_for "rate$rate" "$path" "$cmd"
        log "latency  $path $rate RPS rep $rep: p50 $p50 p90 $p90 p99 $p99 ms, $failed/$requests failed"
      done
    done
  done
fi

# ---------------------------------------------------------------------------------------------------- (c) bulk
rss_kib() {
  local key value _
  [[ -r "/proc/$1/status" ]] || { echo 0; return; }
  while read -r key value _; do
    [[ "$key" == VmRSS: ]] && { echo "$value"; return; }
  done <"/proc/$1/status"
  echo 0
}

# sample_rss STOPFILE OUT role=pid...: until STOPFILE exists, reads each VmRSS at 10 Hz; writes "role pid base peak".
sample_rss() {
  local stop="$1" out="$2"; shift 2
  local -a roles=() pids=() base=() peak=()
  local item i v
  for item in "$@"; do roles+=("${item%%=*}"); pids+=("${item#*=}"); done
  for i in "${!pids[@]}"; do base[i]="$(rss_kib "${pids[i]}")"; peak[i]="${base[i]}"; done
  # Also ends if the script itself is gone ($$ is the script's PID in this background subshell too).
  while [[ ! -e "$stop" ]] && kill -0 $$ 2>/dev/null; do
    for i in "${!pids[@]}"; do
      v="$(rss_kib "${pids[i]}")"
      ((v > peak[i])) && peak[i]=$v
    done
    sleep 0.1
  done
  for i in "${!pids[@]}"; do echo "${roles[i]} ${pids[i]} ${base[i]} ${peak[i]}"; done >"$out"
}

# bulk PATH download|upload REP: one transfer with curl while the path's processes are sampled.
bulk() {
  local path="$1" direction="$2" rep="$3" base url out stop speed code cmd
  ensure_path "$path"
  base="$(base_url "$path")"
  out="$ART/raw/bulk-$direction-$path-$rep"
  stop="$out.stop"
  rm -f "$stop"
  # shellcheck disable=SC2046  # role=pid words
  sample_rss "$stop" "$out.rss" $(proxy_processes "$path") &
  SAMPLER_PID=$!
  if [[ "$direction" == download ]]; then
    url="$base/loadtest/bytes/$BULK_BYTES"
    cmd="curl -sS -o /dev/null -w '%{speed_download}' $url"
    read -r speed code < <(curl -sS -o /dev/null --max-time 600 -w '%{speed_download} %{http_code}\n' "$url" || echo "0 000")
  else
    url="$base/loadtest/info"
    cmd="truncate -s $BULK_BYTES f; curl -sS -o /dev/null -H 'Expect:' -w '%{speed_upload}' -T f $url"
    # No "Expect: 100-continue": curl would wait for the interim response on each path differently.
    read -r speed code < <(curl -sS -o /dev/null --max-time 600 -H 'Expect:' -w '%{speed_upload} %{http_code}\n' -T "$BULK_FILE" "$url" || echo "0 000")
  fi
  touch "$stop"
  wait "$SAMPLER_PID" || true
  SAMPLER_PID=""
  if [[ "$code" != 200 ]]; then
    log "bulk     $path $direction rep $rep: HTTP $code"
    return
  fi
  record "$direction" "$path" MiBps "$rep" "$(awk -v s="$speed" 'BEGIN { printf "%.1f", s / 1048576 }')"
  command_for "$direction" "$path" "$cmd"
  local role pid rss_base rss_peak growth
  while read -r role pid rss_base rss_peak; do
    growth="$(awk -v b="$rss_base" -v p="$rss_peak" 'BEGIN { printf "%.1f", (p - b) / 1024 }')"
    record "rss-$direction" "$path" "$role" "$rep" "$growth"
    record "rss-base" "$path" "$role" "$rep" "$(awk -v b="$rss_base" 'BEGIN { printf "%.1f", b / 1024 }')"
  done <"$out.rss"
  log "bulk     $path $direction rep $rep: $(awk -v s="$speed" 'BEGIN { printf "%.0f MiB/s", s / 1048576 }'); RSS growth: $(awk '{ printf "%s %+.1f MiB  ", $1, ($4 - $3) / 1024 }' "$out.rss")"
}

if measures bulk; then
  BULK_FILE="$ART/upload.bin"
  truncate -s "$BULK_BYTES" "$BULK_FILE"   # sparse: read at memory speed, no disk space
  for ((rep = 1; rep <= REPS; rep++)); do
    for direction in download upload; do
      for path in "${PATHS[@]}"; do bulk "$path" "$direction" "$rep"; done
    done
  done
  rm -f "$BULK_FILE"
fi

# ---------------------------------------------------------------------------------------------------- (d) alloc
alloc() {
  local path="$1"; shift
  local url json cmd args=() item
  ensure_path "$path"
  url="$(base_url "$path")/loadtest/get"
  json="$ART/raw/alloc-$path.json"
  for item in "$@"; do args+=(--pid "$item"); done
  cmd="LoadTests alloc --url $url ${args[*]} --requests $ALLOC_REQUESTS --concurrency 50"
  if ! timeout 600 dotnet "$HARNESS_DLL" alloc --url "$url" "${args[@]}" --requests "$ALLOC_REQUESTS" --concurrency 50 \
      --json "$json" >"$ART/raw/alloc-$path.log" 2>&1; then
    log "alloc    $path: failed ($(tail -n 2 "$ART/raw/alloc-$path.log" | tr '\n' ' '))"
    return
  fi
  while read -r role bytes; do record alloc "$path" "$role" 1 "$bytes"; done < <(jq -r '.processes[] | "\(.role) \(.bytesPerRequest)"' "$json")
  record alloc "$path" rps 1 "$(jq -r '.load.rps' "$json")"
  command_for alloc "$path" "$cmd"
  log "alloc    $path: $(jq -r '[.processes[] | "\(.role) \(.bytesPerRequest) B/req"] | join(", ")' "$json")"
}

if measures alloc; then
  ensure_path direct
  alloc direct "TestBackend=$BACKEND_PID"
  if wants tunnel; then
    ensure_path tunnel
    alloc tunnel "TunnelServer=$SERVER_PID" "TunnelClient=$CLIENT_PID" "TestBackend=$BACKEND_PID"
  fi
  if wants yarp; then
    ensure_path yarp
    alloc yarp "YarpBaseline=$YARP_PID" "TestBackend=$BACKEND_PID"
  fi
fi

# ---------------------------------------------------------------------------------------------------- speedtest
if measures speed; then
  speed_paths=(direct)
  wants tunnel && speed_paths+=(tunnel)
  for mode in download upload; do
    args=()
    for path in "${speed_paths[@]}"; do
      ensure_path "$path"
      if [[ "$mode" == download ]]; then
        args+=(--url "$path=$(base_url "$path")/loadtest/bytes/{size}")
      else
        args+=(--url "$path=$(base_url "$path")/loadtest/info")
      fi
    done
    json="$ART/raw/speed-$mode.json"
    speed_reps=1
    cmd="LoadTests speedtest --mode $mode --streams $SPEED_STREAMS --payload-size $SPEED_PAYLOAD --duration ${RUN_SECONDS}s --repeat $speed_reps ${args[*]}"
    timeout $(((RUN_SECONDS + 3) * speed_reps * ${#speed_paths[@]} + 60)) dotnet "$HARNESS_DLL" speedtest --mode "$mode" \
      --streams "$SPEED_STREAMS" --payload-size "$SPEED_PAYLOAD" --duration "${RUN_SECONDS}s" --repeat "$speed_reps" \
      "${args[@]}" --json "$json" >"$ART/raw/speed-$mode.log" 2>&1 || true
    if [[ -s "$json" ]]; then
      while read -r label mbps rps failures; do
        record "speed-$mode" "$label" Mbps 1 "$mbps"
        record "speed-$mode" "$label" rps 1 "$rps"
        record "speed-$mode" "$label" failed 1 "$failures"
        command_for "speed-$mode" "$label" "$cmd"
      done < <(jq -r '.summary[] | "\(.label) \(.mbps) \(.rps) \(.failures)"' "$json")
      log "speed    $mode: $(jq -r '[.summary[] | "\(.label) \(.mbps | floor) Mbit/s"] | join(", ")' "$json")"
    else
      log "speed    $mode: no result ($(tail -n 2 "$ART/raw/speed-$mode.log" | tr '\n' ' '))"
    fi
  done
fi

# ---------------------------------------------------------------------------------------------------- trace
# trace ROLE PID: a 10 s CPU profile of one process under wrk -c50 through the tunnel. collect-linux samples real CPU
# (kernel included) through perf events; where that is not allowed, collect samples managed stacks of every thread
# (wall-clock: waits dominate, so read the non-wait frames).
trace() {
  local role="$1" pid="$2" out="$ART/trace/$1.nettrace" tracer kind
  "$DOTNET_TRACE" collect-linux -p "$pid" --profile cpu-sampling --duration 00:00:00:10 -o "$out" \
    >"$ART/trace/$role.log" 2>&1 &
  tracer=$!
  kind=cpu-sampling
  sleep 1
  if ! kill -0 "$tracer" 2>/dev/null && [[ ! -s "$out" ]]; then
    "$DOTNET_TRACE" collect -p "$pid" --profile dotnet-sampled-thread-time --duration 00:00:00:10 -o "$out" \
      >>"$ART/trace/$role.log" 2>&1 &
    tracer=$!
    kind=dotnet-sampled-thread-time
    sleep 1
  fi
  timeout 30 wrk -t1 -c50 -d12s "$(base_url tunnel)/loadtest/get" >"$ART/trace/wrk-$role.txt" 2>&1 || true
  wait "$tracer" || true
  [[ -s "$out" ]] || { log "trace $role: no trace ($(tail -n 2 "$ART/trace/$role.log" | tr '\n' ' '))"; return; }
  echo "$kind" >"$ART/trace/$role.kind"
  "$DOTNET_TRACE" report "$out" topN -n 120 --inclusive >"$ART/trace/$role-top-inclusive.txt" 2>&1 || true
  # Kernel, libc and the report's own pseudo-frames out: what is left is where the runtime and our code spend CPU.
  grep -vE 'vmlinux!|libc\.so|\(Non-Activities\)|  Threads  |EventData:|EventName:|^Top ' "$ART/trace/$role-top-inclusive.txt" |
    head -n 30 >"$ART/trace/$role-top-managed.txt" || true
  log "trace $role ($kind): $ART/trace/$role-top-inclusive.txt"
}

if ((trace)) && wants tunnel; then
  mkdir -p "$ART/trace"
  ensure_path tunnel
  trace server "$SERVER_PID"
  ensure_path tunnel
  trace client "$CLIENT_PID"
fi

LOAD_END="$(load_average)"
ELAPSED=$SECONDS
log "measurements done in ${ELAPSED} s; load average at end: $LOAD_END"
RESTARTED="${RESTARTS[*]:-}"
[[ -z "$RESTARTED" ]] || log "WARNING: restarted during the run (stopped from outside): $RESTARTED"

# ---------------------------------------------------------------------------------------------------- report
# Everything the report needs about this run, for compare-report.sh (which can also be rerun by hand on the folder).
declare -p quick doc trace REPS RUN_SECONDS WARMUP RATES BULK_BYTES ALLOC_REQUESTS SPEED_STREAMS SPEED_PAYLOAD PATHS \
  paths_arg skip_arg LOAD_START LOAD_END ELAPSED STARTED_AT RUN_ID BACKEND_PORT SSH_FORWARD_PORT BUILD_INFO RESTARTED MACHINE SOFTWARE CODE \
  >"$ART/meta.env"
COMPARE_HARNESS_DLL="$HARNESS_DLL" "$SCRIPT_DIR/compare-report.sh" "$ART"
log "done in ${SECONDS} s"
