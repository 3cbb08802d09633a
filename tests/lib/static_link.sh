#!/usr/bin/env bash
# A project adopting the library links it statically with nothing but what
# `pkg-config --static` says (the uninstalled .pc files of this build):
# a libe2e-only program and examples/subscriber.c (libe2e-client, Paho,
# OpenSSL) are linked with -static and run. A library missing from
# Libs.private / Requires.private fails the link.
# Usage: static_link.sh BUILDDIR SRCDIR CC
set -euo pipefail
build=$1 src=$2 cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PKG_CONFIG_PATH="$build/meson-uninstalled"
fail() { echo "FAIL: $*" >&2; exit 1; }

# glibc warns that getaddrinfo/dlopen in a static binary need the shared
# libc at run time; that is a warning about name lookup, not a missing library.
link() {  # <out> <pkg> <source>
	local out=$1 pkg=$2 source=$3 flags
	flags=$(pkg-config --static --cflags --libs "$pkg") || fail "pkg-config --static $pkg"
	echo "$cc -static $source $flags"
	# shellcheck disable=SC2086
	"$cc" -static -o "$out" "$source" $flags 2>"$tmp/ld.err" ||
		{ cat "$tmp/ld.err" >&2; fail "static link against $pkg"; }
	grep -v "statically linked applications requires at runtime" "$tmp/ld.err" |
		grep -v "in function" >&2 || true
	# binutils' readelf (the toolchain's): a static program needs no shared library.
	! readelf -d "$out" | grep -q NEEDED || fail "$out needs shared libraries: $(readelf -d "$out" | grep NEEDED)"
}

cat >"$tmp/core.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "e2e/e2e.h"
int main(void)
{
	uint8_t out[E2E_ENVELOPE_OVERHEAD];
	if (e2e_init() != E2E_OK || e2e_now_ms() == 0)
		return 2;
	/* A call into the archive that needs libsodium at run time. */
	if (strcmp(e2e_strerror(E2E_ERR_AUTH), e2e_strerror(E2E_OK)) == 0)
		return 3;
	(void)out;
	puts("static libe2e ok");
	return 0;
}
C
link "$tmp/core" libe2e "$tmp/core.c"
"$tmp/core" | grep -qx "static libe2e ok" || fail "static libe2e program did not run"

link "$tmp/sub" libe2e-client "$src/examples/subscriber.c"
# No identity in an empty directory: the client library (file I/O and
# libsodium, statically linked) must say so and exit 1.
mkdir "$tmp/dir"
rc=0
"$tmp/sub" "$tmp/dir" 2>"$tmp/sub.err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$tmp/sub.err" >&2; fail "static subscriber exit $rc, expected 1"; }
grep -q "identity" "$tmp/sub.err" || { cat "$tmp/sub.err" >&2; fail "static subscriber gave no identity error"; }
echo "ok: pkg-config --static links libe2e and libe2e-client statically"
