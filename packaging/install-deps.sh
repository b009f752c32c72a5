#!/bin/sh
# Install the Debian packages Tocsin needs to build, test and run its demo.
#
#   install-deps.sh              install (or upgrade to) all of them
#   install-deps.sh --if-missing do nothing when all are already installed
#
# Uses apt-get as root and sudo otherwise.  Idempotent.
set -eu

BUILD="gcc make pkg-config libc6-dev
libcurl4-openssl-dev libsnmp-dev libyaml-dev libsqlite3-dev libsystemd-dev
libmicrohttpd-dev libjansson-dev libsodium-dev libgnutls28-dev
dpkg-dev binutils
zlib1g-dev"
TEST="libcmocka-dev python3 python3-pytest python3-aiosmtpd snmp snmptrapd
sqlite3 curl util-linux procps iproute2
systemd-container mmdebstrap zstd dpkg-dev apt-utils"
# helpdesk: business calendars read the zone files; TLS mail tests and the
# collector's HTTPS tests make certificates
TEST="$TEST tzdata openssl"
# the web console's browser test: Debian's chromium, driven by playwright-core
# from npm (a Node.js that already brings npm is kept)
TEST="$TEST chromium nodejs"
command -v npm >/dev/null 2>&1 || TEST="$TEST npm"

PACKAGES=$(echo $BUILD $TEST)

missing() {
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || echo "$p"
	done
}

if [ "${1:-}" = "--if-missing" ]; then
	todo=$(missing)
	[ -z "$todo" ] && exit 0
	echo "tocsin: installing missing packages: $(echo $todo)" >&2
	PACKAGES=$todo
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1; then
	SUDO=sudo
else
	echo "tocsin: need root or sudo to install: $PACKAGES" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; a stale one may 404.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
echo "tocsin: build and test dependencies are installed" >&2
