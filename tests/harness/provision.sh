#!/bin/bash
# Provision a machine for pbxis' live (real Asterisk) tests.
#
#   sudo tests/harness/provision.sh [ASTERISK_VERSION]     (default: 22)
#
# Idempotent; finishes in a few seconds when everything is already in place:
#   1. host packages `debootstrap` and `sip-tester` (sipp), installed when missing
#      (`apt-get update` only runs when something has to be installed);
#   2. the repo's virtualenv `.venv` with `pip install -e '.[test,lint]'` (re-run only when
#      setup.cfg / pyproject.toml / setup.py changed);
#   3. a Debian chroot with Debian's Asterisk package at /var/tmp/pbxis-asterisk<ver>.
#      It is built in <root>.tmp and renamed when complete, so a half-built chroot is
#      never taken for a cached one (an interrupted build is resumed or redone).
# Nothing is left mounted.  Environment: PBXIS_DEBIAN_MIRROR (default: debootstrap's
# own default mirror), PBXIS_SKIP_VENV=1 to skip step 2.
set -euo pipefail

VERSION="${1:-22}"

# The one place that maps an Asterisk major version to the Debian suite shipping it.
case "$VERSION" in
    22) SUITE=sid ;;        # asterisk 1:22.x
    16) SUITE=bullseye ;;   # asterisk 1:16.28
    *) echo "provision: unknown Asterisk version '$VERSION' (known: 22, 16)" >&2; exit 2 ;;
esac

ROOT="/var/tmp/pbxis-asterisk${VERSION}"
TMP="${ROOT}.tmp"
MIRROR="${PBXIS_DEBIAN_MIRROR:-}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MARKER=".pbxis-chroot"

say() { printf 'provision: %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "provision: must run as root" >&2
    exit 1
fi

# --- 1. host packages -------------------------------------------------------------
missing=()
for pkg in debootstrap sip-tester tmux; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "host packages ok (debootstrap, sip-tester, tmux)"
fi

venv_failed=0

# --- 2. virtualenv ------------------------------------------------------------------
if [ "${PBXIS_SKIP_VENV:-0}" = 1 ]; then
    say "skipping .venv (PBXIS_SKIP_VENV=1)"
else
    VENV="$REPO/.venv"
    [ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
    meta=()
    for f in setup.cfg pyproject.toml setup.py; do
        [ -f "$REPO/$f" ] && meta+=("$REPO/$f")
    done
    if [ "${#meta[@]}" -eq 0 ]; then
        say "no setup.cfg/pyproject.toml yet: skipping pip install -e '.[test,lint]'"
    else
        stamp="$VENV/.pbxis-installed"
        digest="$( (cat "${meta[@]}"; echo "extras: test,lint") | sha256sum | cut -d' ' -f1)"
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
            say ".venv up to date"
        else
            say "pip install -e '.[test,lint]' into .venv"
            if (cd "$REPO" && "$VENV/bin/pip" install -q -e '.[test,lint]'); then
                echo "$digest" > "$stamp"
            else
                venv_failed=1   # still build the chroot; fail at the end
                say "WARNING: pip install -e '.[test,lint]' failed (continuing with the chroot)"
            fi
        fi
    fi
fi

# --- 3. Asterisk chroot ---------------------------------------------------------------
umount_below() {  # unmount everything mounted at or below $1 (deepest first)
    local dir="$1" mnt
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts \
        | sort -r | while read -r mnt; do umount -l "$mnt" || true; done
}

fix_perms() {  # Asterisk runs as root in the chroot, which may lack DAC override
    local r="$1" d
    chmod -R a+rX "$r/etc/asterisk" "$r/usr/share/asterisk"
    for d in var/lib/asterisk var/log/asterisk var/spool/asterisk var/cache/asterisk run/asterisk; do
        mkdir -p "$r/$d"
        chmod -R a+rwX "$r/$d"
    done
}

finish() {
    if [ "$venv_failed" = 1 ]; then
        echo "provision: the .venv step failed (see pip's output above)" >&2
        exit 1
    fi
    exit 0
}

exec 9>"${ROOT}.lock"
flock 9   # one builder per version at a time

if [ -f "$ROOT/$MARKER" ] && [ -x "$ROOT/usr/sbin/asterisk" ]; then
    say "chroot cached: $ROOT ($(cat "$ROOT/$MARKER"))"
    finish
fi
if [ -e "$ROOT" ]; then
    say "removing incomplete $ROOT"
    umount_below "$ROOT"
    rm -rf --one-file-system "$ROOT"
fi

# debootstrap deletes TARGET/debootstrap when it completes successfully
if [ -x "$TMP/usr/sbin/asterisk" ] && [ ! -e "$TMP/debootstrap" ]; then
    say "resuming: $TMP already bootstrapped"
else
    if [ -e "$TMP" ]; then
        say "removing stale $TMP"
        umount_below "$TMP"
        rm -rf --one-file-system "$TMP"
    fi
    say "debootstrap $SUITE with asterisk into $TMP (takes a few minutes)"
    log="/var/tmp/pbxis-asterisk${VERSION}-debootstrap.log"
    start=$(date +%s)
    if ! debootstrap --variant=minbase --include=asterisk "$SUITE" "$TMP" ${MIRROR:+"$MIRROR"} >"$log" 2>&1; then
        umount_below "$TMP"
        tail -n 20 "$log" >&2
        echo "provision: debootstrap failed (full log: $log)" >&2
        exit 1
    fi
    umount_below "$TMP"
    say "debootstrap done in $(( $(date +%s) - start )) s"
fi

# apt inside the chroot (old suites' Release files may have expired)
echo 'Acquire::Check-Valid-Until "false";' > "$TMP/etc/apt/apt.conf.d/99pbxis"
chroot "$TMP" apt-get clean
fix_perms "$TMP"
version="$(chroot "$TMP" /usr/sbin/asterisk -V)"
echo "$version, Debian $SUITE, built $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$TMP/$MARKER"
mv "$TMP" "$ROOT"
say "chroot ready: $ROOT ($version)"
finish
