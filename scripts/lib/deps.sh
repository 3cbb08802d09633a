# Shared by scripts/test, scripts/demo and scripts/bench: install the Debian
# packages mqtt-e2e needs, only those missing, with one apt-get update.

E2E_DEB_PACKAGES=(
	gcc g++ libc6-dev pkg-config meson ninja-build
	libsodium-dev libssl-dev libpaho-mqtt-dev libcunit1-dev libjansson-dev
	libmicrohttpd-dev libsystemd-dev prometheus
	mosquitto mosquitto-clients openssl
	rabbitmq-server
	python3 python3-nacl python3-paho-mqtt
	strace xxd valgrind
	gnuplot-nox
	clang libclang-rt-14-dev
)

# scripts/bench only (plots, profiles), not needed by scripts/test: the
# bench smoke draws its plots only when gnuplot is there.
E2E_BENCH_PACKAGES=(gnuplot-nox valgrind)

# Both take a package list; without one, E2E_DEB_PACKAGES.
e2e_missing_packages() {
	local p
	[ $# -gt 0 ] || set -- "${E2E_DEB_PACKAGES[@]}"
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			printf '%s\n' "$p"
	done
}

# apt-get install the given Debian packages (one apt-get update first), as
# root or through sudo.
e2e_apt_install() {
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || {
			echo "missing packages: $* (run as root or install sudo)" >&2
			return 1
		}
		sudo=sudo
	fi
	echo "== installing: $*"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# Packages start no daemon we rely on: tests start their own brokers.
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "$@" >/dev/null
	# Debian's rabbitmq-server starts a node of its own on install (under
	# systemd). The cluster tests start private nodes with their own epmd
	# and ports and never use it: stop it, and keep it from coming back.
	if printf '%s\n' "$@" | grep -qx rabbitmq-server; then
		if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
			$sudo systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
		elif [ -x /etc/init.d/rabbitmq-server ]; then
			$sudo /etc/init.d/rabbitmq-server stop >/dev/null 2>&1 || true
		fi
	fi
}

e2e_install_deps() {
	local missing
	mapfile -t missing < <(e2e_missing_packages "$@")
	[ ${#missing[@]} -eq 0 ] && return 0
	e2e_apt_install "${missing[@]}"
}

# Node.js and npm, for the interop tests only (tests/interop: the aedes broker
# and MQTT.js come from the npm registry when the tests run). Kept apart from
# E2E_DEB_PACKAGES: when node and npm are on PATH (whatever installed them)
# this returns at once, without dpkg or apt. aedes needs Node.js >= 20;
# with an older one those tests SKIP and say why.
e2e_install_node() {
	local pkgs=()
	command -v node >/dev/null || pkgs+=(nodejs)
	command -v npm >/dev/null || pkgs+=(npm)
	[ ${#pkgs[@]} -eq 0 ] && return 0
	e2e_apt_install "${pkgs[@]}"
}
