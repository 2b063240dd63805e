#!/usr/bin/env bash
# shellcheck disable=SC2154  # quick, trace, skip_arg, RATES, … come from the run's meta.env (declare -p)
# Writes the report of a compare.sh run: medians, ratios, plots, and the section between <!-- compare:begin --> and
# <!-- compare:end --> in docs/performance.md (created when missing; a file without the markers gets the section
# appended). compare.sh calls it at the end; run it by hand to regenerate the report of an earlier run:
#
#   tunnel2-load-tests/scripts/compare-report.sh artifacts/compare/<run> [--doc|--no-doc]
#
# Reads <run>/meta.env, results.tsv and commands.tsv; writes <run>/section.md and, with --doc (the default of a
# full run), docs/performance.md and docs/img/compare-*.png. Needs the built LoadTests (for the plots), jq, awk.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
# For the plots: compare.sh passes its own copy; by hand, the built harness (or the run's copy when there is none).
HARNESS_DLL="${COMPARE_HARNESS_DLL:-$REPO_ROOT/tunnel2-load-tests/LoadTests/bin/Release/net10.0/LoadTests.dll}"

die() { echo "compare-report: $*" >&2; exit 1; }
log() { echo "compare-report: $*"; }

(($#)) || die "usage: compare-report.sh ARTIFACTS_DIR [--doc|--no-doc]"
ART="$(cd "$1" && pwd)"
shift
[[ -f "$ART/meta.env" && -f "$ART/results.tsv" ]] || die "$ART has no meta.env/results.tsv (not a compare.sh run folder)"
# shellcheck source=/dev/null  # written by compare.sh with declare -p
source "$ART/meta.env"
while (($#)); do
  case "$1" in
    --doc) doc=1 ;;
    --no-doc) doc=0 ;;
    *) die "unknown argument '$1'" ;;
  esac
  shift
done
RESULTS="$ART/results.tsv"
COMMANDS="$ART/commands.tsv"
[[ -f "$HARNESS_DLL" ]] || HARNESS_DLL="$ART/bin/harness/LoadTests.dll"
MODE_SUFFIX=""; ((quick)) && MODE_SUFFIX="-quick"
wants() { [[ " ${PATHS[*]} " == *" $1 "* ]]; }
measures() { [[ ",$skip_arg," != *",$1,"* ]]; }
harness() { dotnet "$HARNESS_DLL" "$@"; }
# 1073741824 → "1 GiB", 268435456 → "256 MiB".
human_bytes() { awk -v b="$1" 'BEGIN { if (b % 1073741824 == 0) printf "%d GiB", b / 1073741824; else printf "%d MiB", b / 1048576 }'; }

# median KIND PATH KEY: the median of the recorded repetitions (empty when none).
median() {
  awk -F'\t' -v k="$1" -v p="$2" -v m="$3" '$1 == k && $2 == p && $3 == m { print $5 }' "$RESULTS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) exit; print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
count() { awk -F'\t' -v k="$1" -v p="$2" -v m="$3" '$1 == k && $2 == p && $3 == m' "$RESULTS" | wc -l; }
fmt() { [[ -n "$2" ]] && awk -v v="$2" -v f="$1" 'BEGIN { printf f, v }' || echo "—"; }
ratio() { [[ -n "$1" && -n "$2" ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "—"; else printf "%.2f", a / b }' || echo "—"; }
delta() { [[ -n "$1" && -n "$2" ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }' || echo "—"; }
cmd_of() { awk -F'\t' -v k="$1" -v p="$2" '$1 == k && $2 == p { print $3; exit }' "$COMMANDS"; }
cmd_cell() {
  local c
  c="$(cmd_of "$1" "$2")"
  if [[ -n "$c" ]]; then echo "\`$c\`"; else echo "—"; fi
}

# MACHINE, SOFTWARE and CODE were recorded by compare.sh when the run started (meta.env).
IMG_DIR="$REPO_ROOT/docs/img"
IMG_REL="img"
((doc)) || { IMG_DIR="$ART/plots"; IMG_REL="plots"; }
mkdir -p "$IMG_DIR"

# Plots: p50 and p99 per rate (one bar per path), ceilings, bulk throughput.
plots=()
if measures latency; then
  for q in p50 p99; do
    tsv="$ART/plots/latency-$q.tsv"
    : >"$tsv"
    for rate in "${RATES[@]}"; do
      for path in "${PATHS[@]}"; do
        v="$(median "rate$rate" "$path" "$q")"
        [[ -n "$v" ]] && printf '%s RPS\t%s\t%s\n' "$rate" "$path" "$v" >>"$tsv"
      done
    done
    harness plot --tsv "$tsv" --out "$IMG_DIR/compare-latency-$q.png" --title "Open-loop latency $q (CO-corrected, median of $REPS), GET /loadtest/get" --ylabel "$q latency (ms, log scale)" --log >/dev/null &&
      plots+=("compare-latency-$q.png|Open-loop $q latency by offered rate and path (lower is better)")
  done
fi
if measures ceiling; then
  tsv="$ART/plots/ceiling.tsv"
  : >"$tsv"
  for path in "${PATHS[@]}"; do v="$(median ceiling "$path" rps)"; [[ -n "$v" ]] && printf 'wrk -t1 -c50\t%s\t%s\n' "$path" "$v" >>"$tsv"; done
  harness plot --tsv "$tsv" --out "$IMG_DIR/compare-ceiling.png" --title "Closed-loop ceiling (requests/s, median of $REPS)" --ylabel "requests / s" >/dev/null &&
    plots+=("compare-ceiling.png|Closed-loop throughput ceiling, wrk -t1 -c50 (higher is better)")
fi
if measures bulk; then
  tsv="$ART/plots/bulk.tsv"
  : >"$tsv"
  for direction in download upload; do
    for path in "${PATHS[@]}"; do v="$(median "$direction" "$path" MiBps)"; [[ -n "$v" ]] && printf '%s\t%s\t%s\n' "$direction" "$path" "$v" >>"$tsv"; done
  done
  harness plot --tsv "$tsv" --out "$IMG_DIR/compare-bulk.png" --title "Single-stream bulk transfer, $(human_bytes "$BULK_BYTES") (MiB/s)" --ylabel "MiB / s" >/dev/null &&
    plots+=("compare-bulk.png|One bulk transfer each way (higher is better)")
fi

SECTION="$ART/section.md"
{
  echo "<!-- compare:begin -->"
  echo "<!-- Generated by tunnel2-load-tests/scripts/compare.sh; edit outside the markers. -->"
  echo "## Comparison with nginx, YARP and ssh -R ($( ((quick)) && echo "quick run" || echo "full run"))"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| Date | $STARTED_AT (measurements took ${ELAPSED} s) |"
  echo "| Machine | $MACHINE |"
  echo "| Software | $SOFTWARE |"
  echo "| Code | $CODE; binaries built ${BUILD_INFO:-—} |"
  echo "| Load average (1/5/15 min) | start $LOAD_START, end $LOAD_END: the 2 vCPUs are shared with other work, so compare ratios within this run, not absolute numbers across runs |"
  echo "| Command | \`tunnel2-load-tests/scripts/compare.sh${MODE_SUFFIX:+ --quick}${paths_arg:+ --paths $paths_arg}${skip_arg:+ --skip $skip_arg}\` |"
  [[ -z "${RESTARTED:-}" ]] || echo "| Restarts | stopped from outside during the run and restarted by the script: $RESTARTED (measurements after a restart ran on a fresh, less warmed-up process) |"
  echo "| Method | every process on 127.0.0.1, generator included; paths alternated inside each repetition; $REPS repetition(s), medians; artifacts in \`artifacts/compare/$RUN_ID/\` |"
  echo
  echo "Paths: **direct** = TestBackend :$BACKEND_PORT; **tunnel** = TunnelServer → uplink → TunnelClient → TestBackend (two hops);"
  echo "**nginx** = one nginx hop (\`keepalive 128\`, HTTP/1.1 upstream, \`proxy_buffering off\`, 2 workers); **yarp** = one"
  echo "YARP \`HttpForwarder\` hop (\`tunnel2-load-tests/YarpBaseline\`); **ssh** = an OpenSSH reverse tunnel"
  echo "(\`ssh -N -R $SSH_FORWARD_PORT:127.0.0.1:$BACKEND_PORT\` into a private sshd): the closest classic analogue of Tunnel2."
  echo

  if measures ceiling; then
    direct_rps="$(median ceiling direct rps)"
    echo "### Closed-loop ceiling (wrk, 50 connections, ${RUN_SECONDS} s, GET /loadtest/get)"
    echo
    echo "| Path | RPS | × direct | wrk p50 (ms) | wrk p99 (ms) | runs | Command |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for path in "${PATHS[@]}"; do
      rps="$(median ceiling "$path" rps)"
      echo "| $path | $(fmt '%.0f' "$rps") | $(ratio "$rps" "$direct_rps") | $(fmt '%.2f' "$(median ceiling "$path" p50)") | $(fmt '%.2f' "$(median ceiling "$path" p99)") | $(count ceiling "$path" rps) | $(cmd_cell ceiling "$path") |"
    done
    echo
    echo "Closed-loop latency is queueing (Little's law: 50 / RPS); it is the throughput view, not the per-request cost."
    echo
  fi

  if measures latency; then
    echo "### Open-loop latency at fixed rates (LoadTests rate, ${RUN_SECONDS} s after a $WARMUP warm-up, CO-corrected)"
    echo
    echo "| Rate | Path | p50 (ms) | p90 (ms) | p99 (ms) | Δp50 vs direct | Δp99 vs direct | p99 × direct | failed | runs | Command |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for rate in "${RATES[@]}"; do
      d50="$(median "rate$rate" direct p50)"
      d99="$(median "rate$rate" direct p99)"
      for path in "${PATHS[@]}"; do
        p50="$(median "rate$rate" "$path" p50)"
        p99="$(median "rate$rate" "$path" p99)"
        failed="$(awk -F'\t' -v k="rate$rate" -v p="$path" '$1 == k && $2 == p && $3 == "failed" { s += $5 } END { print s + 0 }' "$RESULTS")"
        echo "| $rate | $path | $(fmt '%.3f' "$p50") | $(fmt '%.3f' "$(median "rate$rate" "$path" p90)") | $(fmt '%.3f' "$p99") | $(delta "$p50" "$d50") | $(delta "$p99" "$d99") | $(ratio "$p99" "$d99") | $failed | $(count "rate$rate" "$path" p50) | $(cmd_cell "rate$rate" "$path") |"
      done
    done
    echo
    echo "Targets (performance.md §0.2): added p50 at 1,000 RPS ≤ +0.3 ms, added p99 ≤ +2 ms."
    echo
  fi

  if measures bulk; then
    echo "### Bulk transfer: one $(human_bytes "$BULK_BYTES") body each way (curl, single connection, median of $REPS)"
    echo
    echo "Download: \`GET /loadtest/bytes/$BULK_BYTES\` (generated on the fly). Upload: \`PUT /loadtest/info\` of a sparse file"
    echo "(Content-Length set); TestBackend reads and SHA-256-hashes the body (~1.7 GB/s on this CPU), which caps every path alike."
    echo "RSS growth = peak VmRSS during the transfer (sampled at 10 Hz) minus VmRSS just before it, the largest over the"
    echo "repetitions, per process role (the largest single process for nginx workers / sshd). Goal for TunnelServer and"
    echo "TunnelClient: ≤ 64 MiB each."
    echo
    echo "| Direction | Path | MiB/s | Mbit/s | × direct | RSS growth (MiB) | Command |"
    echo "|---|---|---:|---:|---:|---|---|"
    for direction in download upload; do
      dmib="$(median "$direction" direct MiBps)"
      for path in "${PATHS[@]}"; do
        mib="$(median "$direction" "$path" MiBps)"
        # The largest growth of each role over the repetitions (of several nginx workers / sshd processes: the largest).
        rss="$(awk -F'\t' -v k="rss-$direction" -v p="$path" '
          $1 == k && $2 == p { if (!($3 in max)) { name[++roles] = $3; max[$3] = $5 } else if ($5 + 0 > max[$3] + 0) max[$3] = $5 }
          END { for (i = 1; i <= roles; i++) printf "%s%s %+.1f", (i > 1 ? ", " : ""), name[i], max[name[i]] }' "$RESULTS")"
        mbit=""
        [[ -z "$mib" ]] || mbit="$(awk -v m="$mib" 'BEGIN { printf "%.0f", m * 1048576 * 8 / 1e6 }')"
        echo "| $direction | $path | $(fmt '%.0f' "$mib") | $(fmt '%s' "$mbit") | $(ratio "$mib" "$dmib") | ${rss:-—} | $(cmd_cell "$direction" "$path") |"
      done
    done
    echo
  fi

  if measures alloc; then
    echo "### Managed allocation per request ($ALLOC_REQUESTS GETs of /loadtest/get, 50 in flight)"
    echo
    echo "From each process's runtime \`alloc-rate\` counter over EventPipe, read at counter payloads around the requests, idle"
    echo "background subtracted (\`LoadTests alloc\`). Targets (performance.md §0.2): extra allocation per proxied request < 4 KB"
    echo "(floor 8 KB); YARP ≈ 4.6 KB/request per dotnet/yarp PR #3040."
    echo
    echo "| Path | Process | B/request | RPS during the probe | Command |"
    echo "|---|---|---:|---:|---|"
    for path in direct tunnel yarp; do
      [[ "$path" == direct ]] || wants "$path" || continue
      rps="$(median alloc "$path" rps)"
      command="$(cmd_cell alloc "$path")"
      while read -r role; do
        echo "| $path | $role | $(fmt '%.0f' "$(median alloc "$path" "$role")") | $(fmt '%.0f' "$rps") | $command |"
        command="(same run)"
      done < <(awk -F'\t' -v p="$path" '$1 == "alloc" && $2 == p && $3 != "rps" { print $3 }' "$RESULTS" | awk '!seen[$0]++')
    done
    echo
  fi

  if measures speed; then
    echo "### Speed test: $SPEED_STREAMS parallel streams × $SPEED_PAYLOAD requests, ${RUN_SECONDS} s (LoadTests speedtest)"
    echo
    echo "| Mode | Path | Mbit/s | requests/s | × direct | failed | Command |"
    echo "|---|---|---:|---:|---:|---:|---|"
    for mode in download upload; do
      dm="$(median "speed-$mode" direct Mbps)"
      command="$(cmd_cell "speed-$mode" direct)"
      for path in direct tunnel; do
        [[ "$path" == direct ]] || wants "$path" || continue
        m="$(median "speed-$mode" "$path" Mbps)"
        echo "| $mode | $path | $(fmt '%.0f' "$m") | $(fmt '%.2f' "$(median "speed-$mode" "$path" rps)") | $(ratio "$m" "$dm") | $(fmt '%.0f' "$(median "speed-$mode" "$path" failed)") | $command |"
        command="(same run)"
      done
    done
    echo "| download / upload | tunnel, TLS on the uplink | TODO | | | | needs TLS on the uplink (not implemented yet): rerun with an \`https\` server URL and compare with the row above |"
    echo
  fi

  if ((trace)) && [[ -d "$ART/trace" ]]; then
    echo "### CPU profile under wrk -c50 through the tunnel (dotnet-trace, 10 s per process)"
    echo
    echo "Inclusive share of the process's samples; kernel and libc frames left out here (they are in the artifacts)."
    echo
    for role in server client; do
      f="$ART/trace/$role-top-managed.txt"
      [[ -s "$f" ]] || continue
      echo "Tunnel${role^} ($(cat "$ART/trace/$role.kind")):"
      echo
      echo '```'
      cat "$f"
      echo '```'
      echo
    done
  fi

  if ((${#plots[@]})); then
    echo "### Plots"
    echo
    for plot in "${plots[@]}"; do
      echo "![${plot#*|}]($IMG_REL/${plot%%|*})"
      echo
    done
  fi
  echo "<!-- compare:end -->"
} >"$SECTION"

if ((doc)); then
  DOC="$REPO_ROOT/docs/performance.md"
  if [[ ! -f "$DOC" ]]; then
    {
      echo "# Performance"
      echo
      echo "Hand-written notes go above or below the generated section; \`tunnel2-load-tests/scripts/compare.sh\` replaces only"
      echo "what lies between its markers."
      echo
      cat "$SECTION"
    } >"$DOC"
  # Markers count only as whole lines: prose that mentions them (as this page's introduction does) is left alone.
  elif grep -qx '<!-- compare:begin -->' "$DOC" && grep -qx '<!-- compare:end -->' "$DOC"; then
    awk -v section="$SECTION" '
      $0 == "<!-- compare:begin -->" && !done { while ((getline line < section) > 0) print line; skipping = 1; done = 1; next }
      $0 == "<!-- compare:end -->" && skipping { skipping = 0; next }
      !skipping { print }' "$DOC" >"$DOC.tmp"
    mv "$DOC.tmp" "$DOC"
  else
    { echo; cat "$SECTION"; } >>"$DOC"
  fi
  log "wrote $DOC (plots in docs/img/)"
else
  log "section (not written to docs/performance.md): $SECTION"
fi
log "results: $RESULTS"
