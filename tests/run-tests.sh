#!/usr/bin/env bash
# Runs every test in Tunnel2.sln (Release) and ends with the plain verdict line "N passed, N failed[, N skipped]".
# Installs what the suites need, restores NuGet packages, and exits non-zero on any failure or when no test ran.
#   tests/run-tests.sh [extra dotnet test arguments, e.g. --filter FullyQualifiedName~Protocol]
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "The .NET SDK 10 is required (dotnet on PATH): https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2
  echo "0 passed, 0 failed"
  exit 2
fi

# Debian packages some suites drive for real; each is listed once (a suite whose tool is missing skips with the reason).
#   redis-server: Tunnel2.FunctionalTests RedisTcpTests (a real Redis behind a raw TCP tunnel)
#   python3: Tunnel2.FunctionalTests ConnectionFloodTests (holds 10,000 idle client connections in a second process)
packages=(redis-server python3)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

results="$root/artifacts/test-results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$results"

# --blame-hang-timeout turns a hung test into a failure with a dump instead of a stuck run.
log="$results/dotnet-test.log"
dotnet test Tunnel2.sln -c Release \
  --logger "trx" --logger "console;verbosity=minimal" \
  --results-directory "$results" \
  --blame-hang-timeout 5m \
  "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# dotnet test prints one summary line per test assembly ("Passed!  - Failed: 0, Passed: 34, Skipped: 0, ...");
# CI reads one line, so sum them.
read -r passed failed skipped total < <(
  grep -E '^(Passed|Failed|Skipped)! +- Failed:' "$log" | awk -F'[:,]' '
    { f += $2; p += $4; s += $6; t += $8 }
    END { printf "%d %d %d %d\n", p, f, s, t }')

echo "Test results: $results"
if [ "$total" -eq 0 ]; then
  echo "No test ran (build failure or empty filter); dotnet test exited with $status." >&2
  [ "$status" -eq 0 ] && status=1
  failed=$((failed > 0 ? failed : 0))
elif [ "$failed" -gt 0 ] && [ "$status" -eq 0 ]; then
  status=1
elif [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # Tests passed but something else failed (a crashed test host, a hang): count it, never report green.
  failed=1
fi

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
exit "$status"
