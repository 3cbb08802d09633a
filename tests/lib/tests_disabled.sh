#!/usr/bin/env bash
# `meson setup -Dtests=disabled` builds and installs the product on a
# machine without CUnit: pkg-config here sees only the product's
# dependencies (libsodium, OpenSSL, Jansson for e2e-sub/e2e-pub, libmicrohttpd
# and libsystemd for metrics and sd_notify; Paho has no
# .pc and is found as a library), so any leftover need for CUnit fails the
# setup. The install must hold the libraries, headers, .pc files and
# programs, and no test program.
# Usage: tests_disabled.sh SRCDIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir "$tmp/pc"
# The product's own dependencies and whatever their .pc files require in
# turn (libmicrohttpd's names gnutls, which names nettle, ...): nothing else.
todo=(libsodium openssl jansson libmicrohttpd libsystemd)
while [ ${#todo[@]} -gt 0 ]; do
	p=${todo[0]}; todo=("${todo[@]:1}")
	[ -e "$tmp/pc/$p.pc" ] && continue
	f=$(pkg-config --variable=pcfiledir "$p")/$p.pc || fail "no $p.pc on this machine"
	ln -s "$f" "$tmp/pc/$p.pc"
	mapfile -t more < <(pkg-config --print-requires --print-requires-private "$p" |
		awk '{ print $1 }')
	todo+=("${more[@]}")
done
export PKG_CONFIG_LIBDIR="$tmp/pc" PKG_CONFIG_PATH=""

meson setup "$tmp/b" "$src" -Dtests=disabled -Dbench=false --buildtype=debug \
	--prefix=/usr >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log" >&2; fail "setup"; }
grep -qi "cunit" "$tmp/b/build.ninja" && fail "build.ninja mentions CUnit"
meson compile -C "$tmp/b" -j 2 >"$tmp/compile.log" 2>&1 ||
	{ tail -40 "$tmp/compile.log" >&2; fail "compile"; }
DESTDIR="$tmp/root" meson install -C "$tmp/b" --no-rebuild >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "install"; }
[ "$(meson introspect --tests "$tmp/b")" = "[]" ] ||
	fail "tests registered although -Dtests=disabled"

root=$tmp/root/usr
for h in "$src"/libe2e/include/e2e/*.h "$src"/libe2e/client/include/e2e/*.h; do
	[ -e "$root/include/e2e/$(basename "$h")" ] || fail "public header not installed: $h"
done
for f in bin/e2e-sub bin/e2e-pub bin/e2e-keytool sbin/e2e-proxy; do
	[ -e "$root/$f" ] || fail "not installed: $f"
done
for lib in libe2e libe2e-client; do
	for f in "$lib.so.0" "$lib.a" "$lib.pc"; do
		find "$root" -name "$f" | grep -q . || fail "not installed: $f"
	done
done
find "$tmp/root" -name 'test_*' | grep . && fail "a test program was installed"
echo "ok: -Dtests=disabled builds and installs without CUnit"
