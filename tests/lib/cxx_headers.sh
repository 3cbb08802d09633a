#!/usr/bin/env bash
# Every public header compiles as C++ and links from C++ (extern "C"): a
# C++ file includes them all and calls one function of each library,
# linked against the shared libraries of this build. Without the guards
# the call would look for a mangled name and the link fails.
# Usage: cxx_headers.sh BUILDDIR SRCDIR CXX
set -euo pipefail
build=$1 src=$2 cxx=$3
command -v "$cxx" >/dev/null ||
	{ echo "FAIL: no C++ compiler (install g++: scripts/lib/deps.sh)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
	for h in "$src"/libe2e/include/e2e/*.h "$src"/libe2e/client/include/e2e/*.h; do
		echo "#include \"e2e/$(basename "$h")\""
	done
	cat <<'CXX'
#include <cstdio>
int main()
{
	if (e2e_init() != E2E_OK)
		return 2;
	e2e_client_destroy(nullptr);
	std::printf("c++ ok %s\n", e2e_strerror(E2E_OK));
	return 0;
}
CXX
} >"$tmp/all.cpp"
n=$(grep -c '^#include "e2e/' "$tmp/all.cpp")
[ "$n" -ge 17 ] || { echo "FAIL: only $n public headers found" >&2; exit 1; }
"$cxx" -std=c++11 -Wall -Wextra -pedantic -Werror \
	-I"$src/libe2e/include" -I"$src/libe2e/client/include" \
	"$tmp/all.cpp" -o "$tmp/all" \
	-L"$build/libe2e/client" -L"$build/libe2e" -le2e-client -le2e \
	-Wl,-rpath,"$build/libe2e/client:$build/libe2e"
out=$("$tmp/all")
[ "${out#c++ ok}" != "$out" ] || { echo "FAIL: C++ program printed '$out'" >&2; exit 1; }
echo "ok: $n public headers compile and link as C++"
