#!/usr/bin/env bash
# Runs a load profile against TestBackend and httpbin, directly and through the tunnel, side by side, and prints
# the report path and the verdict. Starts every process it needs on loopback and stops them again (also on Ctrl-C).
#
#   tunnel2-load-tests/scripts/run-ramp-up.sh smoke|moderate|aggressive [options] [-- extra LoadTests run options]
#
# Options:
#   --targets LIST    targets to run: all (default), direct, tunnel, testbackend, httpbin, or names
#                     (backend-direct, backend-tunnel, httpbin-direct, httpbin-tunnel), comma separated.
#                     Processes that no selected target needs are not started (e.g. --targets direct: no tunnel).
#   --no-httpbin      leave httpbin out (and do not install or start it).
#   --keep-running    leave the started processes running after the run (their PIDs are printed).
#   --no-build        skip `dotnet build` (use the existing Release binaries) and, with --docker, the image build.
#   --docker          run against the compose dev system (tunnel2-deploy/dev) instead of local processes: builds
#                     the images (build-images.sh), `docker-compose up -d`, and the harness samples the containers'
#                     CPU/memory through the Docker Engine API; `docker-compose down` at the end.
#   --restart-client-at T  with --docker: restart the tunnel_client container T into the run (e.g. 30s).
#   -h, --help        this text.
# Everything after `--` goes to `LoadTests run` unchanged, e.g. `-- --stage-duration 5s --live mix`.
# Environment: TUNNEL2_BACKEND_PORT, TUNNEL2_HTTPBIN_PORT, TUNNEL2_TUNNEL_PORT override 12007, 12005, 12000.
#
# Exit code: the harness's (0 PASS, 99 threshold breached, 2 setup/target problem, 130 interrupted); 1 when
# this script itself fails (missing tool, port in use, a process not ready).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# The ports are the project's contract (TunnelClient's Development config forwards to 12007 and 12005); override
# them only to run the direct targets beside another copy of the stack.
BACKEND_PORT="${TUNNEL2_BACKEND_PORT:-12007}"
HTTPBIN_PORT="${TUNNEL2_HTTPBIN_PORT:-12005}"
TUNNEL_PORT="${TUNNEL2_TUNNEL_PORT:-12000}"
BACKEND_URL="http://127.0.0.1:$BACKEND_PORT"
HTTPBIN_URL="http://127.0.0.1:$HTTPBIN_PORT"
TUNNEL_URL="http://127.0.0.1:$TUNNEL_PORT"
APT_PACKAGES=(python3-httpbin gunicorn python3-gevent)
READY_LOG=1
START_LOG=path
PORT_IN_USE="port {port} is already in use:
{owner}
run-ramp-up: free port {port} (or point LoadTests at the running services yourself, see tunnel2-load-tests/README.md)"

# ---------------------------------------------------------------------------------------------------- arguments
profile=""
targets="all"
no_httpbin=0
keep_running=0
build=1
docker_mode=0
restart_client_at=""
extra=()
while (($#)); do
  case "$1" in
    smoke|moderate|aggressive) profile="$1" ;;
    --targets) shift; (($#)) || die "--targets needs a value"; targets="$1" ;;
    --targets=*) targets="${1#*=}" ;;
    --no-httpbin) no_httpbin=1 ;;
    --keep-running) keep_running=1 ;;
    --no-build) build=0 ;;
    --docker) docker_mode=1 ;;
    --restart-client-at) shift; (($#)) || die "--restart-client-at needs a value"; restart_client_at="$1" ;;
    --restart-client-at=*) restart_client_at="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done
[[ -n "$profile" ]] || { usage >&2; die "give a profile: smoke, moderate or aggressive"; }
[[ -z "$restart_client_at" ]] || ((docker_mode)) || die "--restart-client-at needs --docker"

# Expands groups to target names, in the harness's canonical order.
expand_targets() {
  local selected=() t
  for t in ${1//,/ }; do
    case "$t" in
      all) selected+=(backend-direct backend-tunnel httpbin-direct httpbin-tunnel) ;;
      direct) selected+=(backend-direct httpbin-direct) ;;
      tunnel) selected+=(backend-tunnel httpbin-tunnel) ;;
      testbackend|backend) selected+=(backend-direct backend-tunnel) ;;
      httpbin) selected+=(httpbin-direct httpbin-tunnel) ;;
      backend-direct|backend-tunnel|httpbin-direct|httpbin-tunnel) selected+=("$t") ;;
      *) die "unknown target '$t'" ;;
    esac
  done
  local name result=()
  for name in backend-direct backend-tunnel httpbin-direct httpbin-tunnel; do
    if [[ " ${selected[*]} " == *" $name "* ]] && { ((no_httpbin == 0)) || [[ "$name" != httpbin-* ]]; }; then
      result+=("$name")
    fi
  done
  ((${#result[@]})) || die "no target left to run"
  local IFS=,
  echo "${result[*]}"
}
targets="$(expand_targets "$targets")"
need_httpbin=0; [[ ",$targets," == *",httpbin-"* ]] && need_httpbin=1
need_tunnel=0; [[ "$targets" == *"-tunnel"* ]] && need_tunnel=1

# ---------------------------------------------------------------------------------------------------- tools
command -v dotnet >/dev/null || die "dotnet not found: install the .NET 10 SDK (global.json pins 10.0.100, latestFeature)"
tools=(curl iproute2)
((need_httpbin && !docker_mode)) && tools+=("${APT_PACKAGES[@]}")
apt_install_missing "${tools[@]}"

# ---------------------------------------------------------------------------------------------------- build
cd "$REPO_ROOT"
LOADTESTS_PROJECT=tunnel2-load-tests/LoadTests/LoadTests.csproj
BACKEND_PROJECT=tunnel2-load-tests/TestBackend/TestBackend.csproj
if ((build && docker_mode)); then
  log "dotnet build $LOADTESTS_PROJECT -c Release (the services run in containers)"
  dotnet build "$LOADTESTS_PROJECT" -c Release -nologo -v quiet
elif ((build)); then
  log "dotnet build Tunnel2.sln -c Release"
  if ! dotnet build Tunnel2.sln -c Release -nologo -v quiet; then
    ((need_tunnel)) && die "the solution does not build, and the tunnel targets need it"
    log "the solution does not build; building only TestBackend and LoadTests (no tunnel target selected)"
    dotnet build "$BACKEND_PROJECT" -c Release -nologo -v quiet
  fi
  # Until the solution lists LoadTests, build it on its own.
  grep -q 'LoadTests.csproj' Tunnel2.sln || dotnet build "$LOADTESTS_PROJECT" -c Release -nologo -v quiet
fi

BACKEND_DIR=tunnel2-load-tests/TestBackend/bin/Release/net10.0
SERVER_DIR=src/TunnelServer/bin/Release/net10.0
CLIENT_DIR=src/TunnelClient/bin/Release/net10.0
HARNESS_DLL=tunnel2-load-tests/LoadTests/bin/Release/net10.0/LoadTests.dll
[[ -f "$HARNESS_DLL" ]] || die "$HARNESS_DLL missing (build failed?)"
[[ -f "$BACKEND_DIR/TestBackend.dll" ]] || ((docker_mode)) || die "$BACKEND_DIR/TestBackend.dll missing (build failed?)"
if ((need_tunnel && !docker_mode)); then
  [[ -f "$SERVER_DIR/TunnelServer.dll" && -f "$CLIENT_DIR/TunnelClient.dll" ]] || die "TunnelServer/TunnelClient binaries missing (build failed?)"
fi

# (An `((docker_mode)) && echo` inside $(...) would end the script under `set -e` when docker_mode is 0.)
run_suffix=""
if ((docker_mode)); then run_suffix="-docker"; fi
RUN_DIR="$(new_run_dir "$REPO_ROOT/artifacts/load" "$(date -u +%Y%m%d-%H%M%S)-$profile$run_suffix")"
mkdir -p "$RUN_DIR/logs"
LOG_DIR="$RUN_DIR/logs"

# ---------------------------------------------------------------------------------------------------- processes
# shellcheck disable=SC2317  # trap handlers
on_exit() {
  local code=$?
  if ((keep_running)) && [[ "${RUN_FINISHED:-0}" == 1 ]]; then
    if ((${#STARTED_PIDS[@]})); then
      log "--keep-running: left running:"
      local i
      for i in "${!STARTED_PIDS[@]}"; do log "  ${STARTED_NAMES[$i]}: PID ${STARTED_PIDS[$i]}"; done
      log "stop them with: kill ${STARTED_PIDS[*]}"
    fi
    if ((COMPOSE_STARTED)); then
      log "--keep-running: the compose project is still up; stop it with: docker-compose -f $COMPOSE_FILE down"
    fi
  else
    trap '' INT TERM   # a second Ctrl-C must not cut the clean-up short
    stop_all
    compose_down
  fi
  exit "$code"
}
# shellcheck disable=SC2317
on_signal() {
  log "interrupted"
  keep_running=0
  if [[ -n "${HARNESS_PID:-}" ]] && kill -0 "$HARNESS_PID" 2>/dev/null; then
    # SIGTERM (a background job ignores SIGINT): the harness cancels, drains and writes its partial report.
    log "stopping the harness (it writes a partial report)"
    STOP_LOG=0 stop_pid LoadTests "$HARNESS_PID" 80
  fi
  exit 130
}
install_traps

# ---------------------------------------------------------------------------------------------------- docker
# --docker: the compose dev system instead of local processes. The harness finds the containers by their compose
# labels, samples them and restarts the client through the Docker Engine API; this script creates and removes them.
COMPOSE_FILE="$REPO_ROOT/tunnel2-deploy/dev/docker-compose.yml"
COMPOSE_STARTED=0
harness_docker=()
# shellcheck disable=SC2317  # called from stop_all
compose_down() {
  ((COMPOSE_STARTED)) || return 0
  docker-compose -f "$COMPOSE_FILE" logs --no-color >"$RUN_DIR/logs/compose.log" 2>&1 || true
  log "docker-compose down (logs: $RUN_DIR/logs/compose.log)"
  docker-compose -f "$COMPOSE_FILE" down --timeout 20 >/dev/null 2>&1 || log "docker-compose down failed"
  COMPOSE_STARTED=0
}

if ((docker_mode)); then
  if ! command -v docker >/dev/null || ! command -v docker-compose >/dev/null; then
    die "--docker needs docker and docker-compose: apt-get install docker.io docker-compose (tunnel2-deploy/dev/README.md)"
  fi
  docker info >/dev/null 2>&1 || die "--docker: the Docker daemon is not reachable (docker info failed); start it: systemctl start docker"
  if ((build)); then
    log "building the images (tunnel2-deploy/dev/build-images.sh --skip-load-runner)"
    "$REPO_ROOT/tunnel2-deploy/dev/build-images.sh" --skip-load-runner
  fi
  if [[ -n "$(docker-compose -f "$COMPOSE_FILE" ps -q 2>/dev/null)" ]]; then
    die "the compose project is already up: stop it first (docker-compose -f $COMPOSE_FILE down), or run LoadTests run --docker against it yourself"
  fi
  require_free "$BACKEND_PORT"; require_free "$HTTPBIN_PORT"; require_free "$TUNNEL_PORT"
  # The compose file publishes on the same TUNNEL2_*_PORT variables, so moved ports move there too.
  export TUNNEL2_BACKEND_PORT="$BACKEND_PORT" TUNNEL2_HTTPBIN_PORT="$HTTPBIN_PORT" TUNNEL2_TUNNEL_PORT="$TUNNEL_PORT"
  log "docker-compose up -d ($COMPOSE_FILE)"
  COMPOSE_STARTED=1
  docker-compose -f "$COMPOSE_FILE" up -d
  # The containers' own health checks gate depends_on; these are the same URLs from the host.
  for url in "$BACKEND_URL/loadtest/ping" "$HTTPBIN_URL/get" "$TUNNEL_URL/healthz" "$TUNNEL_URL/session/$SESSION/loadtest/ping"; do
    for ((n = 0; n < READY_ATTEMPTS * 2; n++)); do
      curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && break
      sleep 0.5
    done
    ((n < READY_ATTEMPTS * 2)) || { docker-compose -f "$COMPOSE_FILE" ps >&2; die "not ready after $READY_ATTEMPTS s: $url"; }
    log "ready: $url"
  done
  harness_docker=(--docker --compose-project "$(sed -n 's/^COMPOSE_PROJECT_NAME=//p' "$REPO_ROOT/tunnel2-deploy/dev/.env")")
  if [[ -n "$restart_client_at" ]]; then harness_docker+=(--restart-client-at "$restart_client_at"); fi
fi

harness_pids=()
if ((!docker_mode)); then
  require_free "$BACKEND_PORT"
  ((need_httpbin)) && require_free "$HTTPBIN_PORT"
  ((need_tunnel)) && require_free "$TUNNEL_PORT"

  start TestBackend "$BACKEND_DIR" -- dotnet TestBackend.dll --urls "$BACKEND_URL"
  wait_ready TestBackend "$BACKEND_URL/loadtest/ping"

  if ((need_httpbin)); then
    start httpbin "$REPO_ROOT" -- gunicorn -b "127.0.0.1:$HTTPBIN_PORT" httpbin:app -k gevent --workers 8 --worker-connections 1000 --graceful-timeout 5
    wait_ready httpbin "$HTTPBIN_URL/get"
  fi

  if ((need_tunnel)); then
    # Production, with the dev grant from the environment (lib/common.sh).
    dev_grant_env
    start TunnelServer "$SERVER_DIR" "${DEV_GRANT_ENV[@]}" -- dotnet TunnelServer.dll --urls "$TUNNEL_URL"
    SERVER_PID=$LAST_PID
    wait_ready TunnelServer "$TUNNEL_URL/healthz"
    start TunnelClient "$CLIENT_DIR" DOTNET_ENVIRONMENT=Development -- dotnet TunnelClient.dll
    CLIENT_PID=$LAST_PID
    wait_ready TunnelClient "$TUNNEL_URL/session/$SESSION/loadtest/ping"
    harness_pids=(--server-pid "$SERVER_PID" --client-pid "$CLIENT_PID")
  fi
fi

# ---------------------------------------------------------------------------------------------------- run
log "profile $profile, targets $targets, report folder $RUN_DIR"
# In the background so that a signal reaches the trap at once (bash defers traps while a foreground job runs).
dotnet "$HARNESS_DLL" run \
  --profile "$profile" \
  --targets "$targets" \
  --direct-backend "$BACKEND_URL" \
  --httpbin "$HTTPBIN_URL" \
  --tunnel "$TUNNEL_URL" \
  --session "$SESSION" \
  --out "$RUN_DIR" \
  "${harness_pids[@]}" \
  "${harness_docker[@]}" \
  "${extra[@]}" &
HARNESS_PID=$!
harness_code=0
wait "$HARNESS_PID" || harness_code=$?
HARNESS_PID=""
RUN_FINISHED=1

echo
case "$harness_code" in
  0) verdict="PASS" ;;
  99) verdict="FAIL (thresholds breached)" ;;
  130) verdict="FAIL (interrupted)" ;;
  *) verdict="FAIL (harness exit code $harness_code)" ;;
esac
if [[ -f "$RUN_DIR/report.html" ]]; then
  log "report: $RUN_DIR/report.html"
  log "        $RUN_DIR/report.md"
  grep -E '^- ✗ ' "$RUN_DIR/report.md" | sed 's/^- /run-ramp-up: breached /' || true
fi
log "verdict: $verdict"
exit "$harness_code"
