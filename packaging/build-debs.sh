#!/bin/bash
# Build the Debian packages from the release binaries in bin/:
#
#   tocsin-agent   the agent, its deliverer (/usr/libexec/tocsin), its unit,
#                  its example configuration
#   tocsin-server  the collector, its unit, its example configuration
#   tocsin-cli     the technicians' command line
#
#   packaging/build-debs.sh [OUTDIR]     (default build/deb)
#
# Plain dpkg-deb, no debhelper: the packages are small and their maintainer
# scripts are written out here, where they can be read.  Shared-library
# dependencies come from dpkg-shlibdeps, so Depends matches what the
# binaries were really linked against.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/deb}
version=$(sed -n 's/^VERSION := //p' "$top/Makefile")
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for b in tocsin-agent tocsin-agent-deliver tocsin-server tocsin; do
	[ -x "$top/bin/$b" ] || { echo "build-debs: bin/$b is missing: run make first" >&2; exit 1; }
done
mkdir -p "$out"

# Depends for binaries, via dpkg-shlibdeps (it insists on a debian/ tree).
shlibs_depends() {
	local d=$work/shlibs
	rm -rf "$d"
	mkdir -p "$d/debian"
	printf 'Source: tocsin\n\nPackage: tocsin\nArchitecture: any\n' >"$d/debian/control"
	(cd "$d" && dpkg-shlibdeps -O "$@" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
}

# install_file SRC DEST MODE
install_file() {
	mkdir -p "$(dirname "$2")"
	install -m "$3" "$1" "$2"
}

# Binaries ship without their debug information.
install_binary() {
	install_file "$1" "$2" 0755
	strip --strip-unneeded "$2"
}

control() { # control ROOT NAME DEPENDS DESCRIPTION-LINES...
	local root=$1 name=$2 depends=$3
	shift 3
	mkdir -p "$root/DEBIAN"
	{
		echo "Package: $name"
		echo "Version: $version"
		echo "Architecture: $arch"
		echo "Maintainer: Tocsin maintainers <tocsin@localhost>"
		echo "Section: admin"
		echo "Priority: optional"
		echo "Depends: $depends"
		echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
		printf 'Description: %s\n' "$1"
		shift
		for line in "$@"; do echo " $line"; done
	} >"$root/DEBIAN/control"
}

# Daemon package: NAME BINARY USER STATE-DIR CONFIG DROPIN-DIR GROUPS
# EXTRA-DEPENDS DESCRIPTION...  STATE-DIR matches the unit's StateDirectory=.
daemon_package() {
	local name=$1 bin=$2 user=$3 state=$4 config=$5 dropins=$6 groups=$7 extra=$8
	shift 8
	local root=$work/$name
	install_binary "$top/bin/$bin" "$root/usr/sbin/$bin"
	install_file "$top/conf.d/$config" "$root/etc/tocsin/$config" 0640
	mkdir -p "$root/etc/tocsin/$dropins"
	# Examples with what they refer to (holiday calendars, trap mappings).
	for f in "$top/conf.d/$dropins"/*; do
		[ -f "$f" ] || continue
		install_file "$f" "$root/usr/share/doc/$name/examples/$dropins/$(basename "$f")" 0644
	done
	# Vendor trap mappings: /etc/tocsin/traps (traps.mappings_dir) holds the
	# site's own; the shipped ones are examples to copy from.
	if [ "$name" = tocsin-server ]; then
		mkdir -p "$root/etc/tocsin/traps"
		for f in "$top/conf.d/traps"/*.yaml; do
			[ -f "$f" ] || continue
			install_file "$f" "$root/usr/share/doc/$name/examples/traps/$(basename "$f")" 0644
		done
	fi
	if [ -f "$top/packaging/$name.service" ]; then
		install_file "$top/packaging/$name.service" "$root/lib/systemd/system/$name.service" 0644
	fi
	install_file "$top/README.md" "$root/usr/share/doc/$name/README.md" 0644
	mkdir -p "$root/usr/lib/sysusers.d"
	{
		echo "u $user - \"Tocsin ($name)\" /var/lib/$state"
		for g in $groups; do echo "m $user $g"; done
	} >"$root/usr/lib/sysusers.d/$name.conf"
	# helpers a daemon runs (the agent's deliverer) count for Depends too
	control "$root" "$name" "$(shlibs_depends "$root/usr/sbin/$bin" $(find "$root/usr/libexec" -type f 2>/dev/null)), adduser | systemd$extra" "$@"
	echo "/etc/tocsin/$config" >"$root/DEBIAN/conffiles"
	cat >"$root/DEBIAN/postinst" <<SH
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
	# The service user, from sysusers.d when systemd is there.
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers $name.conf
	elif ! getent passwd $user >/dev/null; then
		adduser --system --group --home /var/lib/$state --no-create-home $user
	fi
	# The configuration holds secrets: readable by the service only.
	chgrp $user /etc/tocsin/$config
	chmod 0640 /etc/tocsin/$config
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		systemctl enable $name.service || true
	fi
fi
exit 0
SH
	cat >"$root/DEBIAN/prerm" <<SH
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
	systemctl stop $name.service || true
	systemctl disable $name.service || true
fi
exit 0
SH
	cat >"$root/DEBIAN/postrm" <<SH
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ "\$1" = purge ]; then
	rm -rf /var/lib/$state
fi
exit 0
SH
	chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
	dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${name}_${version}_${arch}.deb" >/dev/null
	echo "$out/${name}_${version}_${arch}.deb"
}

# The agent's network side, where tocsin-agent looks for it (deliverer.h).
install_binary "$top/bin/tocsin-agent-deliver" "$work/tocsin-agent/usr/libexec/tocsin/tocsin-agent-deliver"
daemon_package tocsin-agent tocsin-agent tocsin-agent tocsin-agent agent.yaml agent.d "systemd-journal adm" "" \
	"monitoring agent that turns server problems into tickets" \
	"Watches disk and backup space, updates and systemd services on a" \
	"customer server and delivers what it finds to a Tocsin collector," \
	"which keeps one deduplicated ticket per problem."

# The SLA calendars read the zone files.
daemon_package tocsin-server tocsin-server tocsin tocsin server.yaml server.d "" ", tzdata" \
	"collector that keeps one deduplicated ticket per problem" \
	"Receives events from Tocsin agents and SNMP traps from network" \
	"devices, deduplicates them into tickets and serves technicians over" \
	"a JSON API."

root=$work/tocsin-cli
install_binary "$top/bin/tocsin" "$root/usr/bin/tocsin"
control "$root" tocsin-cli "$(shlibs_depends "$root/usr/bin/tocsin")" \
	"command line for Tocsin technicians" \
	"Lists and works the tickets of a Tocsin collector over its JSON API."
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/tocsin-cli_${version}_${arch}.deb" >/dev/null
echo "$out/tocsin-cli_${version}_${arch}.deb"
