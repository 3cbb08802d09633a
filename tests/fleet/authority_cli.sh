#!/usr/bin/env bash
# e2e-authority and e2e-keytool ticket on the command line: --help, clear
# refusals (missing or unsafe directory, no authority key, bad options, no
# broker), and the tickets file's mode. Usage: authority_cli.sh AUTHORITY KEYTOOL
set -u
auth=$1 kt=$2
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# expect RC PATTERN CMD...: exit status RC and PATTERN in stderr.
expect() {
	local rc=$1 pat=$2; shift 2
	local err got
	err=$("$@" 2>&1 >/dev/null); got=$?
	if [ "$got" = "$rc" ] && printf '%s' "$err" | grep -qE -- "$pat"; then ok "$* -> $rc: $pat"
	else bad "$* -> rc $got (want $rc), stderr: $err (want /$pat/)"; fi
}
out=$("$auth" --help) && for o in --dir --cred-ttl --window --cafile SIGHUP; do
	printf '%s' "$out" | grep -q -- "$o" && ok "--help lists $o" || bad "--help lacks $o"; done
expect 1 "not a directory \(make it with 'e2e-keytool authority init" "$auth" --dir "$tmp/none"
mkdir -m 777 "$tmp/open"; chmod 777 "$tmp/open"
expect 1 "not writable by group or others" "$auth" --dir "$tmp/open"
mkdir -m 700 "$tmp/empty"
expect 1 "authority.key: not found \(make it with 'e2e-keytool authority init'\)" "$auth" --dir "$tmp/empty"
expect 1 "option '--bogus' is not valid" "$auth" --bogus
expect 1 "--cred-ttl" "$auth" --cred-ttl 0s
"$kt" authority init --dir "$tmp/a" >/dev/null 2>&1 || bad "authority init"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
expect 2 "" "$auth" --dir "$tmp/a" -h 127.0.0.1 -p "$port"
# e2e-keytool ticket
expect 1 "not an authority directory" "$kt" ticket --dir "$tmp/empty" --scope 1
expect 1 "unknown scope 'nosuch'" "$kt" ticket --dir "$tmp/a" --scope nosuch
expect 1 "--uses takes a number" "$kt" ticket --dir "$tmp/a" --scope 1 --uses 0
expect 1 "--ttl takes a duration" "$kt" ticket --dir "$tmp/a" --scope 1 --ttl soon
expect 1 "Usage" "$kt" ticket --dir "$tmp/a"
tok=$("$kt" ticket --dir "$tmp/a" --scope 1 --scope 7 --ttl 2h --uses 3 2>/dev/null)
[[ "$tok" =~ ^e2et1-[A-Za-z0-9_-]{54}$ ]] && ok "token $tok" || bad "token '$tok'"
mode=$(stat -c %a "$tmp/a/tickets")
[ "$mode" = 600 ] && ok "tickets mode 600" || bad "tickets mode $mode"
grep -qE "^ticket [0-9a-f]{16} [0-9a-f]{32} [0-9]+ 3 1,7$" "$tmp/a/tickets" && ok "tickets record" ||
	bad "tickets record: $(cat "$tmp/a/tickets")"
chmod 644 "$tmp/a/tickets"
expect 1 "tickets" "$kt" ticket --dir "$tmp/a" --scope 1
exit $fail
