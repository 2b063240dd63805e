# shellcheck shell=bash disable=SC2034  # variables set here are read by the sourcing scripts
# Helpers shared by the scripts in tunnel2-load-tests/scripts. Sourced, not run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Sets SCRIPT_DIR (the sourcing script's folder), REPO_ROOT and SESSION (the dev session). What differs between the
# scripts is set by the script (after sourcing; the functions read these when called):
#   PROG                 prefix of log and die lines (default: the script's file name without .sh)
#   LOG_TIME=1           log lines carry the UTC time of day
#   LOG_DIR              folder of the started processes' logs (NAME.log)
#   START_LOG            what `start` logs: pid (default), path (the log file too) or none
#   READY_ATTEMPTS, READY_INTERVAL   readiness polls and seconds between them (default 60 × 0.5 s)
#   READY_CURL_TIMEOUT   seconds per readiness request (default 2)
#   READY_LOG=1          log "NAME ready" when a process is ready
#   READY_TAIL           log lines shown when a process is not ready (default 30)
#   STOP_ATTEMPTS        × 0.5 s between SIGTERM and SIGKILL (default 20)
#   STOP_LOG=0           stop processes without a "stopping NAME (PID n)" line
#   STOP_CHILDREN=1      stop a process's children too (after it: sshd's sessions, a sampler's sleep or curl)
#   PORT_IN_USE          require_free's message, {port} and {owner} replaced
#   INTERRUPT_MESSAGE    what on_signal logs (default "interrupted")
# and a script may define cleanup_first, which on_exit runs before it stops the started processes.

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[1]:-$0}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
SESSION=22222222-2222-2222-2222-222222222222
# The heading of the section tls-speedtest.sh writes into docs/performance.md, and its anchor there.
TLS_SECTION_TITLE="## TLS on the uplink (speed test, TLS off vs on)"
TLS_SECTION_ANCHOR="#tls-on-the-uplink-speed-test-tls-off-vs-on"

PROG="$(basename "$0" .sh)"
LOG_TIME=0
LOG_DIR=""
START_LOG=pid
READY_ATTEMPTS=60
READY_INTERVAL=0.5
READY_CURL_TIMEOUT=2
READY_LOG=0
READY_TAIL=30
STOP_ATTEMPTS=20
STOP_LOG=1
STOP_CHILDREN=0
PORT_IN_USE="port {port} is in use: {owner}"
INTERRUPT_MESSAGE="interrupted"

# ---------------------------------------------------------------------------------------------------- messages
die() { echo "$PROG: $*" >&2; exit 1; }
log() {
  if ((LOG_TIME)); then echo "$PROG: $(date -u +%H:%M:%S) $*"; else echo "$PROG: $*"; fi
}
# The script's header comment (from line 2 to the first line that is not a comment), without the "# ".
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# ---------------------------------------------------------------------------------------------------- tools
# apt_install_missing PACKAGE...: installs the (Debian) packages that are not installed yet, with sudo when not root.
apt_install_missing() {
  local missing=() pkg sudo=""
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} yourself"
    sudo="sudo"
  fi
  log "installing ${missing[*]} (apt)"
  $sudo apt-get update -qq
  # Debian starts services on install unless policy-rc.d forbids it; the system nginx/sshd/redis are never used here.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build_projects PROJECT...: dotnet build -c Release of each, quiet; the build's last lines when one fails.
build_projects() {
  local project out
  for project in "$@"; do
    log "dotnet build $project -c Release"
    if ! out="$(dotnet build "$project" -c Release -nologo -v quiet 2>&1)"; then
      tail -n 30 <<<"$out" >&2
      die "build of $project failed"
    fi
  done
}

# snapshot SRC DEST: a copy of the build output SRC in DEST, printed (on a shared checkout someone may rebuild or
# clean bin/ during the run, and a restarted process would then load another build, or nothing).
snapshot() { mkdir -p "$2" && cp -a "$1/." "$2/" && echo "$2"; }

# new_run_dir PARENT NAME: creates PARENT/NAME, or PARENT/NAME-2, -3 … when two runs start in the same second (two
# soaks on different ports, say), and prints the folder it made; mkdir without -p is the atomic claim.
new_run_dir() {
  local dir="$1/$2" n=1
  mkdir -p "$1"
  until mkdir "$dir" 2>/dev/null; do
    n=$((n + 1))
    ((n <= 100)) || die "cannot create a run folder under $1"
    dir="$1/$2-$n"
  done
  echo "$dir"
}

# dev_grant_env: DEV_GRANT_ENV = TunnelServer's environment for the Production environment (no developer exception
# page on every request, as deployed) with the Development configuration's dev grant passed in: the token hash is read
# from src/TunnelServer/appsettings.Development.json, its single home.
dev_grant_env() {
  local hash
  hash="$(grep -o '"Sha256": *"[0-9a-f]*"' "$REPO_ROOT/src/TunnelServer/appsettings.Development.json" | grep -o '[0-9a-f]\{64\}' || true)"
  [[ -n "$hash" ]] || die "no dev token hash in src/TunnelServer/appsettings.Development.json"
  DEV_GRANT_ENV=(ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production
    Tunnel__Tokens__0__Name=dev "Tunnel__Tokens__0__Sha256=$hash" "Tunnel__Tokens__0__Sessions__0=$SESSION")
}

# ---------------------------------------------------------------------------------------------------- ports
port_owner() { ss -H -ltnp "sport = :$1" 2>/dev/null || true; }
port_pid() { port_owner "$1" | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2; }
# require_free PORT: dies (PORT_IN_USE) when something listens on PORT.
require_free() {
  local owner message
  owner="$(port_owner "$1")"
  [[ -n "$owner" ]] || return 0
  message="${PORT_IN_USE//\{port\}/"$1"}"
  die "${message//\{owner\}/"$owner"}"
}

# ---------------------------------------------------------------------------------------------------- processes
STARTED_PIDS=()
STARTED_NAMES=()
LAST_PID=""
WATCHDOG_PID=""

# track NAME PID: a process started here, stopped by stop_all (newest first); its PID in LAST_PID.
track() { LAST_PID="$2"; STARTED_PIDS+=("$2"); STARTED_NAMES+=("$1"); }

# start NAME DIR [ENV...] -- COMMAND...: runs COMMAND from DIR (so appsettings*.json are found) in the background with
# ENV added, its output appended to $LOG_DIR/NAME.log; PID in LAST_PID.
start() {
  local name="$1" dir="$2"; shift 2
  local env_vars=()
  while (($#)) && [[ "$1" != "--" ]]; do env_vars+=("$1"); shift; done
  (($#)) || die "start $name: no -- before the command"
  shift
  (cd "$dir" && exec env "${env_vars[@]}" "$@") >>"$LOG_DIR/$name.log" 2>&1 &
  track "$name" "$!"
  case "$START_LOG" in
    pid) log "started $name (PID $LAST_PID)" ;;
    path) log "started $name (PID $LAST_PID), log: $LOG_DIR/$name.log" ;;
  esac
}

tail_log() { [[ ! -f "$LOG_DIR/$1.log" ]] || tail -n "$READY_TAIL" "$LOG_DIR/$1.log" >&2 || true; }
http_ok() { curl --noproxy '*' -fsS -o /dev/null --max-time "$READY_CURL_TIMEOUT" "$1"; }

# wait_until NAME PID WHAT COMMAND...: until COMMAND succeeds (READY_ATTEMPTS × READY_INTERVAL s); dies with the tail
# of NAME's log when PID (unless empty) exits first or the time runs out. WHAT (e.g. " (URL)") follows NAME in messages.
wait_until() {
  local name="$1" pid="$2" what="$3" n; shift 3
  for ((n = 0; n < READY_ATTEMPTS; n++)); do
    if "$@" >/dev/null 2>&1; then
      if ((READY_LOG)); then log "$name ready$what"; fi
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      tail_log "$name"
      die "$name exited before it was ready"
    fi
    sleep "$READY_INTERVAL"
  done
  tail_log "$name"
  die "$name not ready after $(awk -v n="$READY_ATTEMPTS" -v s="$READY_INTERVAL" 'BEGIN { printf "%g", n * s }') s$what"
}

# wait_ready NAME URL [PID]: until URL answers 2xx; PID defaults to the last process started ("" for none).
wait_ready() { wait_until "$1" "${3-$LAST_PID}" " ($2)" http_ok "$2"; }

# stop_pid NAME PID [ATTEMPTS]: SIGTERM, up to ATTEMPTS × 0.5 s to exit, then SIGKILL.
stop_pid() {
  local name="$1" pid="$2" attempts="${3:-$STOP_ATTEMPTS}" children="" child n
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  if ((STOP_CHILDREN)); then children="$(pgrep -P "$pid" 2>/dev/null || true)"; fi
  if ((STOP_LOG)); then log "stopping $name (PID $pid)"; fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((n = 0; n < attempts; n++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    if ((STOP_LOG)); then log "$name did not stop; SIGKILL"; else log "$name (PID $pid) did not stop; SIGKILL"; fi
    kill -KILL "$pid" 2>/dev/null || true
  fi
  for child in $children; do STOP_CHILDREN=0 stop_pid "$name child" "$child"; done
}

# stop_from INDEX: stops the processes started at INDEX and after, newest first, and forgets them.
stop_from() {
  local from="$1" i
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= from; i--)); do stop_pid "${STARTED_NAMES[$i]}" "${STARTED_PIDS[$i]}"; done
  STARTED_PIDS=("${STARTED_PIDS[@]:0:from}")
  STARTED_NAMES=("${STARTED_NAMES[@]:0:from}")
}
stop_all() { stop_from 0; }

# shellcheck disable=SC2317  # trap handlers
on_exit() {
  local code=$?
  trap '' INT TERM   # a second Ctrl-C must not cut the clean-up short
  [[ -z "$WATCHDOG_PID" ]] || kill "$WATCHDOG_PID" 2>/dev/null || true
  if declare -F cleanup_first >/dev/null; then cleanup_first || true; fi
  stop_all
  exit "$code"
}
# shellcheck disable=SC2317
on_signal() { log "$INTERRUPT_MESSAGE"; exit 130; }
# install_traps: on exit everything started is stopped; Ctrl-C and SIGTERM end the script with 130.
install_traps() {
  trap on_exit EXIT
  trap on_signal INT TERM
}

# start_watchdog SECONDS: SIGTERM to this script after SECONDS (so on_signal, then on_exit); on_exit ends it.
start_watchdog() {
  (
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$1" &
    sleeper=$!
    wait "$sleeper" && kill -TERM $$ 2>/dev/null
  ) >/dev/null 2>&1 &
  WATCHDOG_PID=$!
}

# ---------------------------------------------------------------------------------------------------- numbers
# median_of [EMPTY]: the median of the numbers on standard input; EMPTY (default nan; "" for no output) when none.
median_of() {
  sort -g | awk -v e="${1-nan}" '{ v[NR] = $1 }
    END { if (NR == 0) { if (e != "") print e; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# fmt FORMAT VALUE: VALUE formatted with printf FORMAT; "—" when it is empty or not a number.
fmt() {
  [[ -n "$2" ]] || { echo "—"; return 0; }
  awk -v f="$1" -v v="$2" 'BEGIN { if (v == v + 0) printf f, v; else print "—" }'
}
# human_bytes: 1073741824 → "1 GiB", 268435456 → "256 MiB".
human_bytes() { awk -v b="$1" 'BEGIN { if (b % 1073741824 == 0) printf "%d GiB", b / 1073741824; else printf "%d MiB", b / 1048576 }'; }

# ---------------------------------------------------------------------------------------------------- report
load_average() { cut -d' ' -f1-3 /proc/loadavg; }
machine_info() {
  echo "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) vCPU, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
}
dotnet_runtime_version() { dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }'; }
# commit_info: COMMIT (HEAD, short) and DIRTY (" + uncommitted src changes" when src has any).
commit_info() {
  COMMIT="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  DIRTY=""
  [[ -z "$(git -C "$REPO_ROOT" status --porcelain -- src 2>/dev/null)" ]] || DIRTY=" + uncommitted src changes"
}

# replace_section DOC SECTION BEGIN END: DOC's lines from BEGIN to END (whole lines, the first pair) become the file
# SECTION; returns 1, DOC unchanged, when DOC lacks either marker.
replace_section() {
  local doc="$1" section="$2" begin="$3" end="$4"
  grep -qxF "$begin" "$doc" && grep -qxF "$end" "$doc" || return 1
  awk -v section="$section" -v begin="$begin" -v end="$end" '
    $0 == begin && !done { while ((getline line < section) > 0) print line; skipping = 1; done = 1; next }
    $0 == end && skipping { skipping = 0; next }
    !skipping { print }' "$doc" >"$doc.tmp.$$"
  mv "$doc.tmp.$$" "$doc"
}
# write_doc_section DOC SECTION BEGIN END: replace_section, or SECTION appended after an empty line.
write_doc_section() {
  replace_section "$@" || { echo; cat "$2"; } >>"$1"
}
