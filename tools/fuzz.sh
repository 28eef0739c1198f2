#!/usr/bin/env bash
# fuzz.sh runs every native Go fuzz target of the workspace (func FuzzX(f
# *testing.F)) for FUZZTIME each, one after another: go test runs one target
# at a time per package, and the machine's cores go to that target's workers.
#
#   tools/fuzz.sh            run every target for FUZZTIME (default 1m)
#   tools/fuzz.sh -l         list the targets as "package target"
#   FUZZ='Webhook|Invoice' tools/fuzz.sh    only targets matching a regexp
#
# Targets are discovered with `go test -list '^Fuzz'` in the packages whose
# test files declare one, so a new target needs no registration. Each target's
# seed corpus is testdata/fuzz/<target> beside it; `go test` (make test) runs
# the seeds, this script explores beyond them. A failure writes its input to
# that directory: commit it with the fix.
#
# go1.26's coordinator can end a clean run with "context deadline exceeded"
# when -fuzztime expires while a worker is busy (golang/go#75804, fixed in
# go1.27). Such a run wrote no failing input: it is reported as a flake, not a
# failure.
set -uo pipefail

cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-1m}
FUZZ=${FUZZ:-.}
GO=${GO:-go}

# packages holding a fuzz target, as ./relative/paths
packages() {
	grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' libs services sim cmd 2>/dev/null |
		xargs -r -n1 dirname | sort -u | sed 's|^|./|'
}

# targets prints "package target" for every target matching $FUZZ, and
# "package -" for a package whose tests do not build.
targets() {
	local pkg out
	for pkg in $(packages); do
		if ! out=$("$GO" test -list '^Fuzz' -run '^$' "$pkg" 2>&1); then
			echo "fuzz: $pkg: tests do not build:" >&2
			echo "$out" | tail -n 5 >&2
			echo "$pkg -"
			continue
		fi
		echo "$out" | grep -E '^Fuzz' | grep -E -- "$FUZZ" | sed "s|^|$pkg |" || true
	done
}

if [[ "${1:-}" == "-l" ]]; then
	targets
	exit 0
fi

mapfile -t all < <(targets)
if ((${#all[@]} == 0)); then
	echo "fuzz: no target matches FUZZ=$FUZZ" >&2
	exit 1
fi
echo "fuzz: ${#all[@]} targets, $FUZZTIME each"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=() flaked=() summary=()
for line in "${all[@]}"; do
	read -r pkg target <<<"$line"
	if [[ "$target" == "-" ]]; then
		failed+=("$pkg (tests do not build)")
		continue
	fi
	echo "== $pkg $target"
	# fuzzdebug adds the coverage bits to the log; the terminal shows the
	# usual progress lines.
	GODEBUG=fuzzdebug=1 "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -timeout 0 "$pkg" 2>&1 |
		tee "$log" | grep -v ' DEBUG '
	status=${PIPESTATUS[0]}
	last=$(grep -E '^fuzz: elapsed' "$log" | tail -n1)
	last=${last#fuzz: }
	initial=$(grep -oE 'initial coverage bits: [0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+$')
	total=$(grep -oE 'total bits: [0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+$')
	summary+=("$pkg $target: ${last/ (*\/sec)/}; coverage bits ${initial:-?} at start, ${total:-${initial:-?}} at end")
	if ((status != 0)); then
		if grep -q 'Failing input written to' "$log" || ! grep -q 'context deadline exceeded' "$log"; then
			failed+=("$pkg $target")
		else
			flaked+=("$pkg $target")
		fi
	fi
done

echo
echo "fuzz: summary ($FUZZTIME per target)"
printf '  %s\n' "${summary[@]}"
if ((${#flaked[@]} > 0)); then
	echo "fuzz: ended by golang/go#75804 without a failing input (not failures):"
	printf '  %s\n' "${flaked[@]}"
fi
if ((${#failed[@]} > 0)); then
	echo "fuzz: FAILED (inputs under each package's testdata/fuzz/<target>):"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz: no failures"
