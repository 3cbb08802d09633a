#!/usr/bin/env bash
# scripts/demo's first minute: --help names every option the parser takes,
# and a bad --broker or a missing value fails at once (exit 1) with a message
# that names the problem — before anything is installed, built or started.
set -u
demo=${1:?usage: demo_args.sh path/to/scripts/demo}
fail=0
check() { # description, condition result
	if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
help=$("$demo" --help); rc=$?
check "--help exits 0" "$rc"
# Every long option in the parser's case statement appears in --help.
opts=$(sed -n '/^while \[ \$# -gt 0 \]/,/^done/p' "$demo" | grep -o -- '^	--[a-z-]*' | tr -d '\t')
[ -n "$opts" ]; check "the parser has options" $?
for o in $opts; do
	printf '%s\n' "$help" | grep -q -- "^ *$o\b"; check "--help lists $o" $?
done
expect_err() { # args... -- expected text
	local args=() want out rc
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	want=$2
	out=$(timeout 10 "$demo" "${args[@]}" 2>&1 </dev/null); rc=$?
	[ $rc = 1 ] && printf '%s' "$out" | grep -q -- "$want"
	check "demo ${args[*]} -> exit 1, '$want' (got $rc: ${out%%$'\n'*})" $?
}
expect_err --broker -- "--broker needs a value"
expect_err --broker --attack -- "--broker needs a value"
expect_err --broker host:notaport -- "port 'notaport' is not a number"
expect_err --broker host:70000 -- "out of range"
expect_err --broker ftp://host -- "unknown scheme"
expect_err --broker ::1:8883 -- "IPv6 address as \[ADDR\]:PORT"
expect_err --broker 'bad host' -- "is not a host name or address"
expect_err --count 0 -- "--count takes a whole number"
expect_err --cafile /nonexistent/ca.crt -- "cannot read '/nonexistent/ca.crt'"
expect_err --frobnicate -- "unknown option --frobnicate"
exit $fail
