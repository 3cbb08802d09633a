#!/usr/bin/env bash
# The installed man pages carry the release they describe and name only
# files that are installed: .TH has the project version and a "Month YYYY"
# date, no @PLACEHOLDER@ is left, every path under the installation prefix
# they mention is in `meson introspect --installed`, and no page points at
# the source tree (protocol/, docs/, tests/ ... exist only in a checkout).
# Usage: man_pages.sh BUILDDIR VERSION
set -u
build=$1 version=$2
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
installed=$(meson introspect --installed "$build" | /usr/bin/python3 -c \
	'import json, sys; print("\n".join(json.load(sys.stdin).values()))')
prefix=$(meson introspect --buildoptions "$build" | /usr/bin/python3 -c \
	'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
pages=$(printf '%s\n' "$installed" | grep '/share/man/man[0-9]/')
[ "$(printf '%s\n' "$pages" | grep -c .)" -ge 5 ] && ok "5 man pages installed" ||
	bad "man pages installed: $pages"
for dest in $pages; do
	page=$build/man/$(basename "$dest")
	name=$(basename "$page")
	[ -f "$page" ] || { bad "$name: not generated in $build/man"; continue; }
	th=$(head -n 1 "$page")
	if printf '%s' "$th" | grep -Eq "^\.TH [A-Z0-9-]+ [0-9] \"[A-Z][a-z]+ [0-9]{4}\" \"mqtt-e2e $version\""; then
		ok "$name: $th"
	else
		bad "$name: .TH line '$th' (want a Month YYYY date and mqtt-e2e $version)"
	fi
	if grep -n '@[A-Z_]*@' "$page"; then bad "$name: placeholder left"; else ok "$name: no placeholder"; fi
	# Paths under the prefix must be installed files (directories of them count).
	for p in $(grep -oE "$prefix/[A-Za-z0-9_./-]*[A-Za-z0-9_]" "$page" | sort -u); do
		if printf '%s\n' "$installed" | grep -qE "^$p(/|$)"; then ok "$name names $p: installed"
		else bad "$name names $p: not installed"; fi
	done
	src=$(grep -noE "(^|[^/A-Za-z_.-])(protocol|docs|examples|dist|scripts|tests|libe2e|proxy|subscriber|keytool|man)/[A-Za-z0-9_./-]+" "$page")
	[ -z "$src" ] && ok "$name: no source-tree path" || bad "$name points into the source tree: $src"
done
# e2e-proxy(8) says what MQTT 5 properties are: plaintext, unauthenticated.
tr '\n' ' ' < "$build/man/e2e-proxy.8" | grep -qiE "MQTT 5 properties[^.]*plaintext" &&
	ok "e2e-proxy(8) states that MQTT 5 properties pass in plaintext" ||
	bad "e2e-proxy(8) does not say MQTT 5 properties pass in plaintext"
exit $fail
