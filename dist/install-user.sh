#!/bin/sh
# meson install: create the mqtt-e2e user and its state directory on this
# machine (skipped for staged installs into DESTDIR, and without systemd:
# packages run systemd-sysusers/systemd-tmpfiles in their own scripts).
set -e
prefix=$1
[ -z "$DESTDIR" ] || exit 0
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers "$prefix/lib/sysusers.d/mqtt-e2e.conf" || echo "mqtt-e2e: systemd-sysusers failed; create the user mqtt-e2e yourself" >&2
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create "$prefix/lib/tmpfiles.d/mqtt-e2e.conf" || echo "mqtt-e2e: systemd-tmpfiles failed; create /var/lib/mqtt-e2e/sender (0700, owner mqtt-e2e)" >&2
fi
