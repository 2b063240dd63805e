#!/usr/bin/env bash
# Builds every image of the dev system from this repository, pulling nothing from any container registry:
#
#   tunnel2/base:bookworm       Debian bookworm minbase made with debootstrap from the apt mirror, imported with
#                               `docker import`; user tunnel2 (10001), ca-certificates, libssl3, t2-probe
#   tunnel2/dotnet:10.0         base + the .NET and ASP.NET Core shared runtimes of the SDK that builds the apps
#   tunnel2/tunnel-server:dev   TunnelServer   (dotnet publish -r linux-x64, framework-dependent)
#   tunnel2/tunnel-client:dev   TunnelClient
#   tunnel2/test-backend:dev    TestBackend
#   tunnel2/httpbin:dev         base + Debian's python3-httpbin, gunicorn, python3-gevent
#   tunnel2/load-runner:dev     LoadTests (the compose profile "load")
#
#   tunnel2-deploy/dev/build-images.sh [--rebuild-base] [--skip-load-runner] [--tag TAG] [IMAGE...]
#
# IMAGE is any of base dotnet tunnel-server tunnel-client test-backend httpbin load-runner (default: all). The base
# and runtime images are reused when they exist (--rebuild-base makes them again); the app images are always rebuilt.
# Environment: DEBIAN_MIRROR (default: this machine's apt mirror), DEBIAN_SECURITY_MIRROR, TUNNEL2_TAG (default dev).
# Needs: root (debootstrap, chroot), docker (a running daemon), debootstrap, the .NET 10 SDK.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
SUITE=bookworm
APP_UID=10001
TAG="${TUNNEL2_TAG:-dev}"
BASE_IMAGE="tunnel2/base:$SUITE"
RUNTIME_IMAGE="tunnel2/dotnet:10.0"
ALL_IMAGES=(base dotnet tunnel-server tunnel-client test-backend httpbin load-runner)

die() { echo "build-images: $*" >&2; exit 1; }
log() { echo "build-images: $*"; }
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

rebuild_base=0
base_built=0
skip_runner=0
wanted=()
while (($#)); do
  case "$1" in
    --rebuild-base) rebuild_base=1 ;;
    --skip-load-runner) skip_runner=1 ;;
    --tag) shift; (($#)) || die "--tag needs a value"; TAG="$1" ;;
    -h|--help) usage; exit 0 ;;
    base|dotnet|tunnel-server|tunnel-client|test-backend|httpbin|load-runner) wanted+=("$1") ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done
((${#wanted[@]})) || wanted=("${ALL_IMAGES[@]}")
if ((skip_runner)); then
  filtered=()
  for w in "${wanted[@]}"; do [[ "$w" == load-runner ]] || filtered+=("$w"); done
  wanted=("${filtered[@]}")
fi
want() { [[ " ${wanted[*]} " == *" $1 "* ]]; }

# The legacy builder: it uses local images for FROM without asking a registry, and takes --network host for apt.
export DOCKER_BUILDKIT=0

command -v docker >/dev/null || die "docker not found: apt-get install docker.io (see tunnel2-deploy/dev/README.md)"
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable (docker info failed): start it (systemctl start docker, or dockerd &)"

WORK="$(mktemp -d /tmp/tunnel2-images.XXXXXX)"
cleanup() {
  # A rootfs may still have /proc or /dev mounted if debootstrap was interrupted.
  local m
  awk -v work="$WORK" 'index($2, work) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# docker build, quiet; the newer docker CLIs' notice that the legacy builder is deprecated is left out of stderr.
docker_build() {
  docker build -q "$@" >/dev/null 2> >(grep -v -e '^DEPRECATED: The legacy builder' -e 'BuildKit is currently disabled' \
    -e 'environment-variable\.$' -e '^$' >&2)
}

# ---------------------------------------------------------------------------------------------------- mirrors
# The first non-security URI of the machine's apt sources (deb822 or one-line format).
detect_mirror() {
  local kind="$1" file uri=""
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$file" ]] || continue
    uri="$(awk -v kind="$kind" '
      BEGIN { RS = ""; FS = "\n" }
      {
        u = ""; s = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
          if ($i ~ /^Suites:/) { s = $i }
        }
        if (u == "") next
        if (kind == "security" && s ~ /-security/) { print u; exit }
        if (kind == "main" && s !~ /-security/) { print u; exit }
      }' "$file")"
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$file" ]] || continue
    if [[ "$kind" == security ]]; then
      uri="$(awk '$1 == "deb" && $3 ~ /-security/ { print $2; exit }' "$file")"
    else
      uri="$(awk '$1 == "deb" && $3 !~ /-security/ { print $2; exit }' "$file")"
    fi
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
}
MIRROR="${DEBIAN_MIRROR:-$(detect_mirror main)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-$(detect_mirror security)}"
SECURITY_MIRROR="${SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

# ---------------------------------------------------------------------------------------------------- base
build_base() {
  ((EUID == 0)) || die "the base rootfs needs root (debootstrap, chroot): run with sudo"
  command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
  local rootfs="$WORK/rootfs"
  log "debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
  debootstrap --variant=minbase --include=ca-certificates,libssl3 "$SUITE" "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

  # Packages installed later (the httpbin image) leave out documentation and translations too.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-tunnel2-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/01-tunnel2" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  log "apt-get upgrade inside the rootfs ($SUITE-updates, $SUITE-security)"
  if ! chroot "$rootfs" /bin/sh -c 'DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade' >"$WORK/upgrade.log" 2>&1; then
    tail -n 20 "$WORK/upgrade.log" >&2
    log "WARNING: the security/updates upgrade failed (log above); the base has the $SUITE point release only"
  fi
  chroot "$rootfs" groupadd --system --gid "$APP_UID" tunnel2
  chroot "$rootfs" useradd --uid "$APP_UID" --gid "$APP_UID" --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin tunnel2
  install -m 0755 "$SCRIPT_DIR/images/t2-probe" "$rootfs/usr/local/bin/t2-probe"

  # Slim: caches, lists, docs, man pages, translations, logs (what debian:bookworm-slim leaves out, and more).
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/lib/dpkg/*-old "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/* "$rootfs"/usr/share/locale/*
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  : >"$rootfs/etc/resolv.conf"
  echo tunnel2 >"$rootfs/etc/hostname"

  log "docker import -> $BASE_IMAGE ($(du -sh "$rootfs" | cut -f1) rootfs)"
  tar --numeric-owner --xattrs -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change 'LABEL tunnel2.image=base' \
    --message "debootstrap --variant=minbase $SUITE $MIRROR" \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

# ---------------------------------------------------------------------------------------------------- runtime
# The shared runtimes of the SDK on PATH (the version the apps are built and tested with).
runtime_line() {
  command -v dotnet >/dev/null || die "dotnet not found: install the .NET 10 SDK"
  dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" && $2 ~ /^10\./' | sort -k2,2V | tail -n 1
}
runtime_version() { runtime_line | awk '{print $2}'; }

build_runtime() {
  local line version dir root aspnet
  line="$(runtime_line)"
  [[ -n "$line" ]] || die "no Microsoft.NETCore.App 10.x runtime in 'dotnet --list-runtimes'"
  version="$(awk '{print $2}' <<<"$line")"
  dir="$(sed -E 's/.*\[(.*)\]$/\1/' <<<"$line")"
  root="$(cd "$dir/../.." && pwd)"
  aspnet="$root/shared/Microsoft.AspNetCore.App/$version"
  [[ -d "$aspnet" ]] || die "Microsoft.AspNetCore.App $version not found under $root/shared"
  [[ -d "$root/host/fxr/$version" ]] || die "hostfxr $version not found under $root/host/fxr"
  local context="$WORK/runtime"
  mkdir -p "$context/dotnet/shared/Microsoft.NETCore.App" "$context/dotnet/shared/Microsoft.AspNetCore.App" "$context/dotnet/host/fxr"
  cp -a "$root/dotnet" "$context/dotnet/"
  local notice
  for notice in LICENSE.txt ThirdPartyNotices.txt; do
    if [[ -f "$root/$notice" ]]; then cp -a "$root/$notice" "$context/dotnet/"; fi
  done
  cp -a "$dir/$version" "$context/dotnet/shared/Microsoft.NETCore.App/"
  cp -a "$aspnet" "$context/dotnet/shared/Microsoft.AspNetCore.App/"
  cp -a "$root/host/fxr/$version" "$context/dotnet/host/fxr/"
  log "docker build $RUNTIME_IMAGE (runtime $version from $root, $(du -sh "$context/dotnet" | cut -f1))"
  docker_build -f "$SCRIPT_DIR/images/dotnet.Dockerfile" --build-arg "BASE=$BASE_IMAGE" --label tunnel2.image=dotnet \
    --label "org.opencontainers.image.version=$version" -t "$RUNTIME_IMAGE" "$context"
}

# ---------------------------------------------------------------------------------------------------- apps
# The sources are copied (without bin/ and obj/) so the publish neither touches nor races the working tree's builds.
SOURCE_COPY=""
copy_sources() {
  [[ -n "$SOURCE_COPY" ]] && return
  SOURCE_COPY="$WORK/src"
  mkdir -p "$SOURCE_COPY"
  (cd "$REPO_ROOT" && tar --exclude=bin --exclude=obj -c \
    global.json Directory.Build.props Directory.Packages.props .editorconfig src tunnel2-load-tests/TestBackend tunnel2-load-tests/LoadTests) \
    | tar -C "$SOURCE_COPY" -x
}

# publish NAME PROJECT: framework-dependent for linux-x64 into $WORK/NAME/app.
publish() {
  local name="$1" project="$2" out="$WORK/$1/app"
  copy_sources
  log "dotnet publish $project (Release, linux-x64, framework-dependent)"
  mkdir -p "$out"
  dotnet publish "$SOURCE_COPY/$project" -c Release -r linux-x64 --self-contained false -p:UseAppHost=false \
    -nologo -v quiet -o "$out" >"$WORK/$name.publish.log" 2>&1 \
    || { tail -n 40 "$WORK/$name.publish.log" >&2; die "dotnet publish $project failed"; }
  # Development settings (the dev token among them) stay out of images: containers get explicit environment.
  rm -f "$out"/appsettings.Development.json "$out"/*.pdb
}

build_app() {
  local name="$1" context="$WORK/$1" extra=()
  [[ "$name" == httpbin || "$name" == load-runner ]] && extra+=(--network host)
  mkdir -p "$context"
  log "docker build tunnel2/$name:$TAG"
  docker_build "${extra[@]}" -f "$SCRIPT_DIR/images/$name.Dockerfile" \
    --build-arg "BASE=$BASE_IMAGE" --build-arg "RUNTIME=$RUNTIME_IMAGE" --label "tunnel2.image=$name" \
    --label "org.opencontainers.image.revision=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    -t "tunnel2/$name:$TAG" "$context"
}

# ---------------------------------------------------------------------------------------------------- main
if want base; then
  if ((rebuild_base)) || ! image_exists "$BASE_IMAGE"; then
    build_base
    base_built=1
  else
    log "$BASE_IMAGE exists (--rebuild-base to make it again)"
  fi
fi
image_exists "$BASE_IMAGE" || die "$BASE_IMAGE missing: build it first (build-images.sh base)"

needs_runtime=0
for w in dotnet tunnel-server tunnel-client test-backend load-runner; do want "$w" && needs_runtime=1; done
if ((needs_runtime)); then
  sdk_runtime="$(runtime_version)"
  image_runtime="$(docker image inspect -f '{{ index .Config.Labels "org.opencontainers.image.version" }}' "$RUNTIME_IMAGE" 2>/dev/null || true)"
  # A new base or another SDK runtime makes a new runtime image.
  if ((rebuild_base || base_built)) || [[ "$image_runtime" != "$sdk_runtime" ]]; then
    build_runtime
  else
    log "$RUNTIME_IMAGE has runtime $image_runtime already (--rebuild-base to make it again)"
  fi
fi

want tunnel-server && { publish tunnel-server src/TunnelServer/TunnelServer.csproj; build_app tunnel-server; }
want tunnel-client && { publish tunnel-client src/TunnelClient/TunnelClient.csproj; build_app tunnel-client; }
want test-backend && { publish test-backend tunnel2-load-tests/TestBackend/TestBackend.csproj; build_app test-backend; }
want httpbin && build_app httpbin
want load-runner && { publish load-runner tunnel2-load-tests/LoadTests/LoadTests.csproj; build_app load-runner; }

# The images these tags pointed to before (untagged now, unless a container still uses them).
docker image prune -f --filter label=tunnel2.image >/dev/null

echo
log "images:"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | awk '$1 ~ /^tunnel2\// { printf "  %-28s %s\n", $1, $2 }' | sort
