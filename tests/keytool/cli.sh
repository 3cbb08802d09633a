#!/bin/bash
# End-to-end test of e2e-keytool: every subcommand, in a private temporary
# directory, including the refusals (bad keys, unknown scopes, insecure
# permissions, revoked keys). Prints TAP-like lines; exits 1 on any failure.
#   cli.sh /path/to/e2e-keytool /path/to/txreserve
set -u
K=$1
TXRESERVE=$2
T=$(mktemp -d "${TMPDIR:-/tmp}/e2e-kt-cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
unset E2E_DIR
export HOME=$T/home
mkdir -p "$HOME"
S=$T/sender
SUB=$T/sub
n=0
failed=0

pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() { n=$((n + 1)); echo "not ok $n - $1"; failed=$((failed + 1)); }

# run RC DESC CMD...: run with stdout/stderr captured in $T/out, $T/err
run() {
	local want=$1 desc=$2 rc
	shift 2
	"$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	if [ "$rc" -eq "$want" ]; then pass "$desc"; else
		fail "$desc (exit $rc, want $want)"; sed 's/^/#   /' "$T/err"; fi
}
# run_in RC DESC INPUT CMD...: the same with stdin from file INPUT
run_in() {
	local want=$1 desc=$2 input=$3 rc
	shift 3
	"$@" >"$T/out" 2>"$T/err" <"$input"
	rc=$?
	if [ "$rc" -eq "$want" ]; then pass "$desc"; else
		fail "$desc (exit $rc, want $want)"; sed 's/^/#   /' "$T/err"; fi
}
# has FILE REGEX DESC
has() { if grep -Eq -- "$2" "$1"; then pass "$3"; else fail "$3"; sed 's/^/#   /' "$1"; fi; }
hasnt() { if grep -Eq -- "$2" "$1"; then fail "$3"; sed 's/^/#   /' "$1"; else pass "$3"; fi; }
# Fixed strings (base64 has '+' and '/', paths may have '.'):
# hasline FILE LINE DESC (whole line), contains/lacks FILE TEXT DESC
hasline() { if grep -qxF -- "$2" "$1"; then pass "$3"; else fail "$3"; sed 's/^/#   /' "$1"; fi; }
contains() { if grep -qF -- "$2" "$1"; then pass "$3"; else fail "$3"; sed 's/^/#   /' "$1"; fi; }
lacks() { if grep -qF -- "$2" "$1"; then fail "$3"; sed 's/^/#   /' "$1"; else pass "$3"; fi; }
mode() { stat -c %a "$1"; }
same() { if [ "$1" = "$2" ]; then pass "$3"; else fail "$3 ('$1' != '$2')"; fi; }

# --- top level --------------------------------------------------------------
run 0 "--version" "$K" --version
has "$T/out" '^e2e-keytool [0-9]' "--version prints the version"
run 0 "help" "$K" help
has "$T/out" '^  rotate ' "help lists the subcommands on stdout"
run 1 "no arguments is misuse" "$K"
has "$T/err" '^Usage:' "usage on stderr when misused"
run 1 "unknown subcommand" "$K" frobnicate
for c in genkey pubkey enroll revoke list trust untrust rotate scopes status; do
	run 0 "$c --help" "$K" "$c" --help
	has "$T/out" "^Usage: e2e-keytool $c" "$c --help prints its usage on stdout"
	run 0 "help $c" "$K" help "$c"
	run 1 "$c with an unknown option" "$K" "$c" --bogus
	has "$T/err" "Usage: e2e-keytool $c" "$c misuse prints usage on stderr"
done

# --- genkey / pubkey --------------------------------------------------------
run 0 "genkey" "$K" genkey --dir "$S"
has "$T/out" '^e2e1 [A-Za-z0-9+/]{86}==$' "genkey prints the public line"
same "$(wc -l <"$T/out")" 1 "genkey prints exactly one line on stdout"
has "$T/err" 'wrote .*/identity.key' "genkey reports the file on stderr"
cp "$T/out" "$T/proxy.pub"
same "$(mode "$S/identity.key")" 600 "identity.key is mode 600"
same "$(mode "$S")" 700 "a new directory is mode 700"
run 1 "genkey refuses to replace an identity" "$K" genkey --dir "$S"
has "$T/err" -- '--force' "the refusal mentions --force"
run 0 "pubkey" "$K" pubkey --dir "$S"
same "$(cat "$T/out")" "$(cat "$T/proxy.pub")" "pubkey matches genkey's line"
run 0 "pubkey --name" "$K" pubkey --dir "$S" --name site1
same "$(cat "$T/out")" "$(cat "$T/proxy.pub") site1" "pubkey --name appends the name"
run 1 "pubkey --name with a bad name" "$K" pubkey --dir "$S" --name 'a b'
run 0 "pubkey --fingerprint" "$K" pubkey --dir "$S" --fingerprint
has "$T/out" '^e2e:([0-9a-f]{4}:){7}[0-9a-f]{4}$' "fingerprint format"
cp "$T/out" "$T/proxy.fp"
run 0 "pubkey FILE" "$K" pubkey "$S/identity.key"
same "$(cat "$T/out")" "$(cat "$T/proxy.pub")" "pubkey FILE reads that file"
run 1 "genkey --dir with -o is misuse" "$K" genkey --dir "$S" -o "$T/x.key"
run 0 "genkey -o FILE" "$K" genkey -o "$T/other.key"
cp "$T/out" "$T/other.pub"
run 0 "genkey --force replaces" "$K" genkey -o "$T/other.key" --force
if cmp -s "$T/out" "$T/other.pub"; then fail "--force made a new key"; else pass "--force made a new key"; fi
chmod 640 "$S/identity.key"
run 1 "pubkey refuses a group-readable identity" "$K" pubkey --dir "$S"
contains "$T/err" "$S/identity.key: mode 0640: readable by group or others" "the refusal names the file and cause"
chmod 600 "$S/identity.key"
run 1 "pubkey of a missing file" "$K" pubkey "$T/none.key"
has "$T/err" 'none.key: No such file or directory' "missing file reported with its path"
mkdir "$T/adir.key"
run 1 "pubkey of a directory" "$K" pubkey "$T/adir.key"
contains "$T/err" "$T/adir.key: is a directory, not a file" "a directory is not called 'insecure permissions'"
run 1 "status of a missing directory" "$K" status --dir "$T/nowhere/sender"
contains "$T/err" "directory $T/nowhere does not exist" "a missing directory is named, not 'I/O error'"

# --- genkey -o - / pubkey from stdin (as wg genkey | wg pubkey) --------------
"$K" genkey -o - 2>"$T/err1" | "$K" pubkey >"$T/pipe.out" 2>"$T/err2"
rcs="${PIPESTATUS[*]}"
pipe_pub=$(cat "$T/pipe.out")
same "$rcs" "0 0" "genkey -o - | pubkey: both exit 0"
if [[ "$pipe_pub" =~ ^e2e1\ [A-Za-z0-9+/]{86}==$ ]]; then pass "the pipeline prints one public line"
else fail "the pipeline prints one public line ('$pipe_pub')"; cat "$T/err1" "$T/err2" | sed 's/^/#   /'; fi
[ -e ./- ] && fail "genkey -o - wrote a file named '-'" || pass "genkey -o - writes no file named '-'"
run 0 "genkey -o - " "$K" genkey -o -
has "$T/out" '^e2e-secret1 [A-Za-z0-9+/]{86}==$' "genkey -o - writes the secret line on stdout"
hasnt "$T/out" '^e2e1 ' "genkey -o - prints no public line on stdout (nothing but the secret)"
same "$(wc -c <"$T/err")" 0 "genkey -o - is silent on stderr"
cp "$T/out" "$T/piped.key"
run_in 0 "pubkey - reads stdin" "$T/piped.key" "$K" pubkey -
cp "$T/out" "$T/piped.pub"
run_in 0 "bare pubkey with a redirected file reads stdin" "$T/piped.key" "$K" pubkey
same "$(cat "$T/out")" "$(cat "$T/piped.pub")" "pubkey < file = pubkey - < file"
run_in 0 "pubkey --fingerprint from stdin" "$T/piped.key" "$K" pubkey --fingerprint
has "$T/out" '^e2e:([0-9a-f]{4}:){7}[0-9a-f]{4}$' "fingerprint from stdin"
run_in 0 "pubkey --name from stdin" "$T/piped.key" "$K" pubkey - --name n1
same "$(cat "$T/out")" "$(cat "$T/piped.pub") n1" "pubkey --name from stdin appends the name"
run_in 0 "pubkey --dir ignores stdin" "$T/piped.key" "$K" pubkey --dir "$S"
same "$(cat "$T/out")" "$(cat "$T/proxy.pub")" "pubkey --dir reads the directory even with stdin redirected"
run 0 "pubkey with stdin /dev/null reads the default directory" env E2E_DIR="$S" "$K" pubkey
same "$(cat "$T/out")" "$(cat "$T/proxy.pub")" "bare pubkey with a terminal-like stdin keeps the default file"
printf 'not a key\n' >"$T/garbage"
run_in 1 "pubkey refuses garbage on stdin" "$T/garbage" "$K" pubkey -
contains "$T/err" "stdin" "the refusal names stdin"
: >"$T/empty"
run_in 1 "pubkey refuses an empty stdin" "$T/empty" "$K" pubkey -
run 1 "genkey -o - refuses --name" "$K" genkey -o - --name x
same "$(wc -c <"$T/out")" 0 "genkey -o - --name writes no secret"
umask 022
run 0 "genkey -o FILE (fresh)" "$K" genkey -o "$T/fresh.key"
same "$(mode "$T/fresh.key")" 600 "genkey -o FILE is mode 600 (even with umask 022)"
run 0 "pubkey < the file genkey wrote" "$K" pubkey "$T/fresh.key"
cp "$T/out" "$T/fresh.pub"
run_in 0 "pubkey < FILE" "$T/fresh.key" "$K" pubkey
same "$(cat "$T/out")" "$(cat "$T/fresh.pub")" "pubkey < FILE = pubkey FILE"
ls -a "$T" | grep -q '\.tmp\.' && fail "no temporary files left by genkey" || pass "no temporary files left by genkey"

# --- scopes -----------------------------------------------------------------
run 0 "scopes without a scopes file" "$K" scopes --dir "$S"
has "$T/out" $'^0\tdefault\t#\t\\(implied\\)$' "the implied default scope is shown"
printf '# site\nscope 1 telemetry sensors/# plant/+/temp\nscope 2 alarms alarms/#\nscope 3 other other/#\n' >"$S/scopes"
run 0 "scopes" "$K" scopes --dir "$S"
has "$T/out" $'^1\ttelemetry\tsensors/# plant/\\+/temp$' "scope 1 with its filters"
same "$(head -1 "$T/out" | cut -f2)" telemetry "scopes are listed in match order"
printf 'scope 1 telemetry sensors/#\nscope 2 alarms alarms/#/x\n' >"$T/badscopes"
mkdir -p "$T/bad" && cp "$T/badscopes" "$T/bad/scopes"
run 1 "scopes with a bad filter" "$K" scopes --dir "$T/bad"
has "$T/err" 'scopes:2: invalid topic filter' "the error names file and line"

# --- rotate (initial keys) --------------------------------------------------
# A new epoch is max(highest + 1, Unix seconds now) (SPEC 6.4): the first
# ones are the clock, later ones are read from the output and compared.
START=$(date +%s)
run 0 "rotate creates a first epoch for every scope" "$K" rotate --dir "$S"
E1=$(sed -n 's/^scope telemetry (1): epoch \([0-9]*\)$/\1/p' "$T/out")
if [ -n "$E1" ] && [ "$E1" -ge "$START" ] && [ "$E1" -le "$(date +%s)" ]; then
	pass "telemetry's first epoch is the clock ($E1)"; else fail "telemetry's first epoch ($E1)"; fi
has "$T/out" "^scope default \\(0\\): epoch $E1\$" "the implied default scope gets a key too"
# epoch N: the epoch SCOPE-NAME got in $T/out
epoch_of() { sed -n "s/^scope $1 ([0-9]*): epoch \([0-9]*\)\$/\1/p" "$T/out"; }
after() { if [ -n "$2" ] && [ "$2" -gt "$1" ]; then pass "$3 ($2 > $1)"; else fail "$3 ('$2' after $1)"; fi; }
same "$(mode "$S/keys")" 600 "keys is mode 600"
same "$(grep -c '^key ' "$S/keys")" 4 "four keys written"

# --- enroll -----------------------------------------------------------------
"$K" genkey --dir "$SUB" >"$T/alice.pub" 2>/dev/null
"$K" genkey -o "$T/bob.key" >"$T/bob.pub" 2>/dev/null
"$K" genkey -o "$T/carol.key" >"$T/carol.pub" 2>/dev/null
"$K" genkey -o "$T/dave.key" --name dave-laptop >"$T/dave.pub" 2>/dev/null
run_in 0 "enroll from stdin" "$T/alice.pub" "$K" enroll alice - --scope telemetry,alarms --dir "$S"
# shellcheck disable=SC2046 # split on purpose: an unquoted public line
run 0 "enroll with the key as separate words" "$K" enroll bob $(cat "$T/bob.pub") --scope alarms --dir "$S"
run 0 "enroll accepts a line with a name and trailing blanks" "$K" enroll dave "$(cat "$T/dave.pub")  " --scope other --dir "$S"
run 0 "list" "$K" list --dir "$S"
has "$T/out" "^alice	telemetry,alarms	$("$K" pubkey "$SUB/identity.key" --fingerprint)\$" \
	"list shows name, scopes and fingerprint"
has "$T/out" '^bob	alarms	e2e:' "list shows bob"
run 1 "enroll refuses a bad public key" "$K" enroll carol 'e2e1 AAAA' --scope alarms --dir "$S"
has "$T/err" 'bad public key' "bad key reported"
run 1 "enroll refuses a truncated key" "$K" enroll carol "$(cut -c1-60 "$T/carol.pub")" --scope alarms --dir "$S"
run 1 "enroll refuses an unknown scope" "$K" enroll carol "$(cat "$T/carol.pub")" --scope alarms,nope --dir "$S"
has "$T/err" "unknown scope 'nope'" "unknown scope named"
run 1 "enroll without --scope is misuse" "$K" enroll carol "$(cat "$T/carol.pub")" --dir "$S"
run 1 "enroll refuses a bad name" "$K" enroll 'car ol' "$(cat "$T/carol.pub")" --scope alarms --dir "$S"
run 1 "enroll refuses the name 'revoked'" "$K" enroll revoked "$(cat "$T/carol.pub")" --scope alarms --dir "$S"
run 1 "enroll refuses a key enrolled under another name" "$K" enroll bob2 "$(cat "$T/bob.pub")" --scope alarms --dir "$S"
run 1 "enroll refuses a name held by another key" "$K" enroll bob "$(cat "$T/carol.pub")" --scope alarms --dir "$S"
hasnt "$S/enrolled" carol "refused enrollments left no trace"
run 0 "enroll again updates the scopes" "$K" enroll bob "$(cat "$T/bob.pub")" --scope alarms,other --dir "$S"
run 0 "list after update" "$K" list --dir "$S"
has "$T/out" '^bob	alarms,other	' "bob's scopes replaced"
printf 'alice telemetry e2e1 AAAA\n' >"$T/bad/enrolled"
rm "$T/bad/scopes"
run 1 "list with a corrupt enrolled file" "$K" list --dir "$T/bad"
has "$T/err" 'enrolled:1: bad public key' "the error names file and line"

# An enrolled file others may write decides who gets keys: refused, with owner and mode.
chmod 664 "$S/enrolled"
run 1 "list refuses a group-writable enrolled file" "$K" list --dir "$S"
has "$T/err" "$S/enrolled: mode 0664: writable by group or others \\(chmod go-w it\\)" \
	"the refusal names the file, its mode and the fix"
run_in 1 "enroll refuses a group-writable enrolled file" "$T/carol.pub" "$K" enroll carol - --scope alarms --dir "$S"
chmod 646 "$S/enrolled"
run 1 "a world-writable enrolled file is refused" "$K" list --dir "$S"
chmod 644 "$S/enrolled"
run 0 "a world-readable enrolled file is fine (it is not secret)" "$K" list --dir "$S"
if [ "$(id -u)" = 0 ]; then
	chown 65534 "$S/enrolled"
	run 1 "an enrolled file of another owner is refused" "$K" list --dir "$S"
	has "$T/err" "$S/enrolled: owned by uid 65534, but this runs as uid 0" "names the owner"
	chown 0 "$S/enrolled"
fi
chmod 600 "$S/enrolled"

# --- revoke -----------------------------------------------------------------
run 0 "revoke" "$K" revoke alice --dir "$S"
TE2=$(epoch_of telemetry)
after "$E1" "$TE2" "revoke rotated telemetry"
after "$E1" "$(epoch_of alarms)" "revoke rotated alarms"
hasnt "$T/out" 'other|default' "scopes alice did not hold are not rotated"
has "$S/enrolled" '^revoked alice e2e1 ' "a revoked line is kept"
hasnt "$S/enrolled" '^alice ' "the active entry is gone"
has "$S/keys" "^key 1 $TE2 [0-9]+ 0 " "telemetry's new epoch is current"
has "$S/keys" "^key 1 $E1 [0-9]+ [1-9][0-9]* " "telemetry's first epoch got a deadline"
has "$S/keys" "^key 3 $E1 [0-9]+ 0 " "scope other still at its first epoch"
run_in 1 "re-enrolling a revoked key is refused" "$T/alice.pub" "$K" enroll alice - --scope alarms --dir "$S"
has "$T/err" 'revoked' "the refusal says why"
run_in 1 "a revoked key under a new name is refused" "$T/alice.pub" "$K" enroll alice2 - --scope alarms --dir "$S"
run 1 "revoke of an unknown name" "$K" revoke nobody --dir "$S"
has "$T/err" "no enrolled subscriber named 'nobody'" "unknown name reported"
run 1 "revoke twice" "$K" revoke alice --dir "$S"
run 0 "list after revoke" "$K" list --dir "$S"
has "$T/out" '^alice	\(revoked\)	e2e:' "list marks the revoked entry"
run_in 0 "a new key may reuse a revoked name" "$T/carol.pub" "$K" enroll alice - --scope other --dir "$S"

# --- rotate -----------------------------------------------------------------
run 0 "rotate one scope with zero grace" "$K" rotate --scope telemetry --grace 0s --dir "$S"
TE3=$(epoch_of telemetry)
same "$(cat "$T/out")" "scope telemetry (1): epoch $TE3" "only telemetry rotated"
after "$TE2" "$TE3" "a new telemetry epoch"
sleep 0.05
run 0 "rotate again prunes the expired epoch" "$K" rotate --scope telemetry --dir "$S"
TE4=$(epoch_of telemetry)
after "$TE3" "$TE4" "telemetry at a newer epoch"
has "$T/err" 'pruned 1 expired key' "one key pruned"
hasnt "$S/keys" "^key 1 $TE2 " "the epoch with grace 0 is gone"
has "$S/keys" "^key 1 $E1 " "the first epoch (grace 24h) is kept"
run 1 "rotate with a stray argument" "$K" rotate --grace 5 parsecs --dir "$S"
run 1 "rotate with a bad unit" "$K" rotate --grace 5y --dir "$S"
run 1 "rotate an unknown scope" "$K" rotate --scope nope --dir "$S"
run 0 "rotate with --grace 30m" "$K" rotate --scope other --grace 30m --dir "$S"

# --- status -----------------------------------------------------------------
if "$TXRESERVE" "$S" 1 "$TE4" 4096; then pass "reservation recorded"; else fail "reservation recorded"; fi
run 0 "status" "$K" status --dir "$S"
has "$T/out" '^scope 1 telemetry$' "status lists the scope"
has "$T/out" "^  epoch $TE4  current, age [0-9]+s  ≤4096 sealed \\(reserved\\)\$" "current epoch with age and reservation"
has "$T/out" "^  epoch $E1  expires in 23h5[0-9]m  0 sealed\$" "older epoch with its expiry"
has "$T/out" "^  epoch $E1  expires in 29m[0-9]+s" "30m grace shown"
has "$T/out" '^subscribers: 3 enrolled, 1 revoked$' "subscriber counts"
chmod 640 "$S/keys"
run 1 "status refuses a group-readable keys file" "$K" status --dir "$S"
contains "$T/err" "$S/keys: mode 0640: readable by group or others" "names the file and the cause"
run 1 "rotate refuses a group-readable keys file" "$K" rotate --dir "$S"
chmod 604 "$S/keys"
run 1 "a world-readable keys file is refused too" "$K" rotate --dir "$S"
chmod 600 "$S/keys"
cp "$S/keys" "$T/keys.good"
printf 'key 1 9 0 0 notbase64\n' >>"$S/keys"
run 1 "status with a corrupt keys line" "$K" status --dir "$S"
has "$T/err" "keys:$(wc -l <"$S/keys"): key is not base64" "the error names file and line"
lacks "$T/err" "$(grep "^key 1 $E1 " "$T/keys.good" | cut -d' ' -f6)" "no key text in the error"
cp "$T/keys.good" "$S/keys"

# --- re-enrolling with fewer scopes rotates the lost ones (M2) ---------------
# bob holds alarms and other; keeping only alarms must rotate other, not alarms.
current3() { sed -n 's/^key 3 \([0-9]*\) [0-9]* 0 .*/\1/p' "$S/keys"; }
OTHER=$(current3)
run 0 "enroll bob with fewer scopes" "$K" enroll bob "$(cat "$T/bob.pub")" --scope alarms --dir "$S"
after "$OTHER" "$(current3)" "other (3) was rotated: bob lost it"
hasnt "$T/out" 'alarms|telemetry|default' "scopes bob keeps are not rotated"
run 0 "enroll bob again with the same scope" "$K" enroll bob "$(cat "$T/bob.pub")" --scope alarms --dir "$S"
same "$(cat "$T/out")" "" "nothing lost, nothing rotated"
# sign on for a scope: the keytool marks the keys it makes in the scope's mode.
printf 'scope 1 telemetry sensors/# plant/+/temp\nscope 2 alarms alarms/#\nsign alarms\nscope 3 other other/#\n' >"$S/scopes"
run 0 "rotate a signed scope" "$K" rotate --scope alarms --dir "$S"
has "$S/keys" "^key 2 $(epoch_of alarms) [0-9]+ 0 [^ ]+ [0-9a-f]{8} signed\$" "its new key is marked signed"
printf 'scope 1 telemetry sensors/# plant/+/temp\nscope 2 alarms alarms/#\nscope 3 other other/#\n' >"$S/scopes"

# --- E2E_DIR ------------------------------------------------------------------
E2E_DIR=$S run 0 "E2E_DIR is the default directory" "$K" list
has "$T/out" '^bob	' "E2E_DIR read"

# --- trust / untrust ----------------------------------------------------------
run_in 0 "trust from stdin" "$T/proxy.pub" "$K" trust site1 - --dir "$SUB"
hasline "$SUB/trust" "site1 $(cat "$T/proxy.pub")" "trust line written"
run_in 0 "trusting the same again is a no-op" "$T/proxy.pub" "$K" trust site1 - --dir "$SUB"
same "$(grep -c '^site1' "$SUB/trust")" 1 "no duplicate line"
run 1 "trust refuses a bad key" "$K" trust site2 'e2e1 !!!' --dir "$SUB"
run 1 "trust refuses a name held by another key" "$K" trust site1 "$(cat "$T/other.pub")" --dir "$SUB"
run 1 "trust refuses a key under a second name" "$K" trust site9 "$(cat "$T/proxy.pub")" --dir "$SUB"
run 0 "trust a second sender" "$K" trust site2 "$(cat "$T/other.pub")" --dir "$SUB"
run 0 "untrust" "$K" untrust site1 --dir "$SUB"
hasnt "$SUB/trust" '^site1 ' "site1 removed"
has "$SUB/trust" '^site2 ' "site2 kept"
run 1 "untrust of an unknown name" "$K" untrust site1 --dir "$SUB"
chmod 620 "$SUB/trust"
run 1 "trust refuses a group-writable trust file" "$K" trust site3 "$(cat "$T/proxy.pub")" --dir "$SUB"
has "$T/err" "$SUB/trust: mode 0620: writable by group or others" \
	"the refusal names the trust file, its mode and the fix"
run 1 "untrust refuses a group-writable trust file" "$K" untrust site2 --dir "$SUB"
has "$SUB/trust" '^site2 ' "the trust file was not rewritten"
chmod 602 "$SUB/trust"
run 1 "trust refuses a world-writable trust file" "$K" untrust site2 --dir "$SUB"
mv "$SUB/trust" "$SUB/trust.real"
mkdir "$SUB/trust"
run 1 "a directory named trust is refused" "$K" untrust site2 --dir "$SUB"
has "$T/err" "$SUB/trust: is a directory, not a file" "says it is not a file"
rmdir "$SUB/trust"
mv "$SUB/trust.real" "$SUB/trust"
chmod 644 "$SUB/trust"
run 0 "a world-readable trust file is fine" "$K" trust site3 "$(cat "$T/proxy.pub")" --dir "$SUB"
run_in 0 "trust defaults to \$HOME/.config/mqtt-e2e" "$T/proxy.pub" "$K" trust site1 -
has "$HOME/.config/mqtt-e2e/trust" '^site1 ' "default subscriber directory used"
run 0 "untrust in the default directory" "$K" untrust site1

# --- authority (fleet trust, SPEC 13) ---------------------------------------
A=$T/authority
run 0 "authority init" "$K" authority init --dir "$A" --name fleet
has "$T/out" '^e2e1 [A-Za-z0-9+/=]{88} fleet$' "authority init prints its public line"
same "$(mode "$A/authority.key")" 600 "authority.key is 0600"
same "$(cat "$A/authority.pub")" "$(cat "$T/out")" "authority.pub holds the printed line"
run 1 "authority init refuses to replace an authority" "$K" authority init --dir "$A"
run 0 "authority issue --subscriber" "$K" authority issue --dir "$A" --subscriber \
	$(cat "$T/proxy.pub") --scope 1 --scope 2 --ttl 1h
has "$T/out" '^e2e-cred1 [A-Za-z0-9+/=]+$' "a credential line is printed"
run 0 "authority issue --sender to a file" "$K" authority issue --dir "$A" --sender \
	$(cat "$T/proxy.pub") --filter '1:plant/+/temp' --filter '2:alarm/#' -o "$T/cred"
same "$(mode "$T/cred")" 600 "the credential file is 0600"
has "$A/issued" "^e2e:[0-9a-f:]{39} sender [0-9]+ e2e1 " "the issue is logged"
run 1 "authority issue: a sender needs --filter" "$K" authority issue --dir "$A" --sender \
	$(cat "$T/proxy.pub") --scope 1
run 1 "authority issue: an invalid filter" "$K" authority issue --dir "$A" --sender \
	$(cat "$T/proxy.pub") --filter '1:a/#/b'
run 1 "authority issue: an unknown scope name" "$K" authority issue --dir "$A" --subscriber \
	$(cat "$T/proxy.pub") --scope nosuch
run 1 "authority issue: a bad --ttl" "$K" authority issue --dir "$A" --subscriber \
	$(cat "$T/proxy.pub") --scope 1 --ttl soon
run 1 "authority issue without an authority" "$K" authority issue --dir "$T/none" \
	--subscriber $(cat "$T/proxy.pub") --scope 1
run 0 "authority revoke by fingerprint" "$K" authority revoke --dir "$A" \
	"$(cut -d' ' -f1 "$A/issued" | head -1)"
has "$T/out" 'list 1, 1 key\(s\); publish it retained on e2e/control/authority/[0-9a-f]{32}$' \
	"revoke names the list number and the topic"
run 0 "authority revoke the same key again: nothing new" "$K" authority revoke --dir "$A" \
	$(cat "$T/proxy.pub")
has "$T/err" 'already revoked \(list 1\)' "says it is already revoked"
run 1 "authority revoke an unknown fingerprint" "$K" authority revoke --dir "$A" \
	e2e:0000:0000:0000:0000:0000:0000:0000:0000
run 1 "authority: an unknown action" "$K" authority frobnicate --dir "$A"

echo "1..$n"
[ "$failed" -eq 0 ] || { echo "# $failed of $n failed"; exit 1; }
