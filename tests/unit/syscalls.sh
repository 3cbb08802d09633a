#!/bin/bash
# Hot-path proof: seal+open 10 and 10,000 messages under strace; the syscall
# totals must be identical (no syscall per message) and hotpath must report
# no allocation inside its loop (allocs=0).
# Usage: syscalls.sh HOTPATH_BINARY     Exit 77 (skip) without usable strace.
set -u

hot=${1:?usage: syscalls.sh HOTPATH_BINARY}
small=10
large=10000

if ! command -v strace >/dev/null 2>&1; then
	echo "strace not installed: skipping"
	exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/e2e-hotpath-XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
if ! strace -f -c -o "$work/probe" true >/dev/null 2>&1; then
	echo "strace cannot trace here (ptrace not permitted?): skipping"
	exit 77
fi

# An AddressSanitizer build owns malloc (hotpath says so with exit 77), and
# LeakSanitizer cannot run under ptrace: ask first, without strace.
"$hot" 1 >/dev/null
if [ $? -eq 77 ]; then
	echo "hotpath cannot count allocations in this build (sanitizer): skipping"
	exit 77
fi

# run N: trace hotpath N; leaves the strace table in $work/table.N
run() {
	local n=$1 out rc
	out=$(strace -f -c -o "$work/table.$n" "$hot" "$n")
	rc=$?
	echo "hotpath $n: $out (exit $rc)"
	if [ "$rc" -ne 0 ] || ! grep -qx 'allocs=0 bad=0' <<<"$out"; then
		echo "FAIL: heap allocation or wrong verdict inside the loop for N=$n"
		cat "$work/table.$n"
		exit 1
	fi
}

# total calls: the "calls" column (4th) of the "total" line
total() { awk '$NF == "total" { print $4 }' "$work/table.$1"; }
# per syscall: "name calls", sorted
per_call() {
	awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4 }' "$work/table.$1" | sort
}

run "$small"
run "$large"
t_small=$(total "$small")
t_large=$(total "$large")
echo "syscalls: N=$small -> $t_small, N=$large -> $t_large"
if [ -z "$t_small" ] || [ "$t_small" != "$t_large" ] ||
   ! diff <(per_call "$small") <(per_call "$large") >/dev/null; then
	echo "FAIL: syscall counts differ, so the loop enters the kernel"
	echo "--- N=$small"; cat "$work/table.$small"
	echo "--- N=$large"; cat "$work/table.$large"
	diff <(per_call "$small") <(per_call "$large")
	exit 1
fi
echo "PASS: $t_small syscalls for both; no allocation in the loop"
