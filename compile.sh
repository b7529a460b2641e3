#!/usr/bin/env bash
# Compiles main.ts into one self-contained executable, dist/sheepdog, with the permissions and V8
# flags of deploy/runtime-flags baked in (the same ones bin/sheepdog passes to deno run).
#
# deno compile needs Deno's runtime (denort) of the same version. Deno downloads it from its own
# download host once and caches it; where that host cannot be reached, point DENORT_BIN at a
# denort binary of the pinned version (the plain deno binary is not one).
#
# Environment:
#   DENORT_BIN                 denort to embed instead of downloading one
#   COMPILE_DOWNLOAD_TIMEOUT   seconds allowed for fetching denort (default 30)
#   COMPILE_TIMEOUT            seconds allowed for the compile itself (default 900)
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
out="$root/dist/sheepdog"
deno="$root/.tools/node_modules/.bin/deno"

die() { echo "compile.sh: error: $*" >&2; exit 1; }

"$root/bin/setup" --quiet
[[ -f "$root/main.ts" ]] || die "$root/main.ts does not exist yet"
version=$("$deno" --version | sed -n '1s/^deno \([^ ]*\).*/\1/p')

if [[ -n ${DENORT_BIN:-} ]]; then
  [[ -f $DENORT_BIN && -x $DENORT_BIN ]] || die "DENORT_BIN=$DENORT_BIN is not an executable file"
  export DENORT_BIN
fi

flags=()
while IFS= read -r line || [[ -n $line ]]; do
  line=${line%%#*}
  line=${line//[[:space:]]/}
  if [[ -n $line ]]; then flags+=("$line"); fi
done <"$root/deploy/runtime-flags"

work=$(mktemp -d "${TMPDIR:-/tmp}/sheepdog-compile.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Step 1: get the runtime with a bounded wait, by compiling a one-line program without type
# checking (seconds when denort is cached or given). Deno caches a downloaded denort, so step 2
# does not download again. A host that cannot be reached fails here, within the timeout, instead
# of after the type check of the whole graph or on a hanging connection.
echo 'console.log("denort-ok");' >"$work/probe.ts"
probe_rc=0
timeout --kill-after=5 "${COMPILE_DOWNLOAD_TIMEOUT:-30}" \
  "$deno" compile --no-check --no-config --output "$work/probe" "$work/probe.ts" \
  >"$work/probe.log" 2>&1 </dev/null || probe_rc=$?
if [[ $probe_rc != 0 ]]; then
  # Deno's colours and its multi-line cause chain, condensed to the innermost cause.
  cause=$(sed -e 's/\x1b\[[0-9;]*m//g' -e '/^Stack backtrace/,$d' "$work/probe.log" |
    grep -E '^ *[0-9]+: ' | tail -n 1 |
    sed 's/^ *[0-9]*: *//' || true)
  if [[ $probe_rc == 124 || $probe_rc == 137 ]]; then
    cause="no answer within ${COMPILE_DOWNLOAD_TIMEOUT:-30}s"
  fi
  if [[ -n ${DENORT_BIN:-} ]]; then
    die "deno compile cannot use DENORT_BIN=$DENORT_BIN${cause:+: $cause}"
  fi
  die "cannot get the Deno $version runtime (denort) from Deno's download host${cause:+ ($cause)}; on a machine without access set DENORT_BIN to a denort $version binary"
fi
# The plain deno binary given as DENORT_BIN compiles "fine" into a REPL that ignores the program.
probe_out=$(timeout 20 "$work/probe" </dev/null 2>&1 || true)
if [[ $probe_out != "denort-ok" ]]; then
  die "the runtime ${DENORT_BIN:+DENORT_BIN=$DENORT_BIN }is not denort $version (a compiled program does not run its code)"
fi

# Step 2: the real compile.
mkdir -p "$root/dist"
cd "$root"
rc=0
timeout --kill-after=10 "${COMPILE_TIMEOUT:-900}" \
  "$deno" compile --quiet --config "$root/deno.json" "${flags[@]}" \
  --output "$out" "$root/main.ts" </dev/null || rc=$?
if [[ $rc == 124 || $rc == 137 ]]; then die "deno compile did not finish within ${COMPILE_TIMEOUT:-900}s"; fi
[[ $rc == 0 ]] || die "deno compile failed (exit $rc)"
echo "compile.sh: built $out (deno $version; flags: ${flags[*]})"
