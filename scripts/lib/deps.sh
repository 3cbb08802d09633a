# Shared by scripts/test, scripts/demo and scripts/bench: install the Debian
# packages mqtt-e2e needs, only those missing, with one apt-get update.

E2E_DEB_PACKAGES=(
	gcc libc6-dev pkg-config meson ninja-build
	libsodium-dev libssl-dev libpaho-mqtt-dev libcunit1-dev libjansson-dev
	mosquitto mosquitto-clients openssl
	python3 python3-nacl python3-paho-mqtt
	strace xxd
	clang libclang-rt-14-dev
)

e2e_missing_packages() {
	local p
	for p in "${E2E_DEB_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			printf '%s\n' "$p"
	done
}

e2e_install_deps() {
	local missing sudo=""
	mapfile -t missing < <(e2e_missing_packages)
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || {
			echo "missing packages: ${missing[*]} (run as root or install sudo)" >&2
			return 1
		}
		sudo=sudo
	fi
	echo "== installing: ${missing[*]}"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# Packages start no daemon we rely on: tests start their own brokers.
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}
