#!/usr/bin/env bash
# Prepare this machine (Debian 12, as root) and the controller venv for palisade.ebpf.
#
# Idempotent: every step checks first and only acts on what is missing, so a
# second run changes nothing and takes seconds. apt is only consulted (and
# `apt-get update` only run) when a package or the kernel headers are missing;
# pip only runs when requirements-dev.txt or the venv's Python changed.
#
# Called by `make setup`; safe to run directly: scripts/setup.sh
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV=$ROOT/.venv
REQ=$ROOT/requirements-dev.txt
STAMP=$VENV/.requirements-dev.stamp
COLLECTION_LINK=$ROOT/collections/ansible_collections/palisade/ebpf
APT_LOG=${TMPDIR:-/tmp}/palisade-setup-apt.log

# Packages the managed-host side needs (bcc and pyroute2 for the system python,
# the lab's sshd and HAProxy, nft for the TPROXY fallback, nsenter/mountpoint).
APT_PACKAGES=(python3-bpfcc bpfcc-tools libbpfcc python3-pyroute2 iproute2 nftables
              python3-nftables  # the L7 redirect's TPROXY fallback (settings.l7_tproxy)
              iptables    # bench/p4_packet.py compares the datapath with an iptables chain
              openssh-server haproxy util-linux
              curl apache2-utils  # L7 tests send real HTTP requests; bench/p5_l7.py drives ab
              bpftool     # datapath integration tests inspect and edit pinned maps with it
              systemd     # systemd-analyze verifies the l7proxy role's unit (installed, never started here)
              shellcheck)  # so ansible-test sanity checks our shell scripts too

# The venv is built from the machine's python3; never from the venv itself
# (make puts .venv/bin first on PATH).
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$VENV/bin" | paste -sd: -)
unset VIRTUAL_ENV PYTHONHOME
export PATH DEBIAN_FRONTEND=noninteractive
# ansible-test looks for its cache under ~ (CI may start with a bare environment).
HOME=${HOME:-$(getent passwd "$(id -un)" | cut -d: -f6)}
export HOME

STEP=start
STARTED=$SECONDS
SUMMARY=()
CHANGES=()
APT_UPDATED=0
POLICY_RC_GUARD=0

log()     { printf 'setup: %s\n' "$*"; }
die()     { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
summary() { SUMMARY+=("$(printf '  %-15s %s' "$1" "$2")"); }
changed() { CHANGES+=("$*"); log "$*"; }

cleanup() {
    # Only remove a policy-rc.d we put there ourselves.
    if [ "$POLICY_RC_GUARD" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT
trap 'die "failed during: $STEP (scripts/setup.sh line $LINENO)"' ERR

need_root() {
    [ "$(id -u)" = 0 ] || die "root is needed to $1 (run: sudo make setup)"
}

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

apt_update_once() {
    [ "$APT_UPDATED" = 1 ] && return 0
    need_root "run apt-get update"
    log "apt-get update"
    apt-get update -qq -o DPkg::Lock::Timeout=300 >"$APT_LOG" 2>&1 \
        || { tail -n 20 "$APT_LOG" >&2; die "apt-get update failed (full log: $APT_LOG)"; }
    APT_UPDATED=1
}

# haproxy/sshd processes in our own network namespace: what a package's init
# script would have started. (The lab's instances live in other namespaces.)
daemon_pids() {
    local self pid
    self=$(readlink /proc/self/ns/net)
    for pid in $(pgrep -x 'haproxy|sshd' 2>/dev/null || true); do
        if [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$self" ]; then echo "$pid"; fi
    done | sort
}

apt_install() {
    need_root "install $*"
    apt_update_once
    # Package scripts must not start services: there is no init system to own
    # them, and the lab starts its own haproxy/sshd instances in namespaces.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, from palisade scripts/setup.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        POLICY_RC_GUARD=1
    fi
    local before pid
    before=$(daemon_pids)
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "$@" >"$APT_LOG" 2>&1 \
        || { tail -n 30 "$APT_LOG" >&2; die "apt-get install $* failed (full log: $APT_LOG)"; }
    # Belt and braces: stop any daemon the install started anyway (only those).
    for pid in $(comm -13 <(printf '%s\n' "$before") <(daemon_pids)); do
        log "stopping $(cat "/proc/$pid/comm" 2>/dev/null || echo process) pid $pid started by the package install"
        kill "$pid" 2>/dev/null || true
    done
    if [ "$POLICY_RC_GUARD" = 1 ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_GUARD=0; fi
    changed "installed: $*"
}

# --- checks before touching anything -------------------------------------------
STEP="platform check"
if [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null; then
    die "this setup supports Debian 12 only (no /etc/debian_version or apt-get)"
fi
command -v python3 >/dev/null || die "python3 not found on PATH"

# --- apt packages --------------------------------------------------------------
STEP="apt packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
    summary "apt packages" "installed ${missing[*]}"
else
    summary "apt packages" "all ${#APT_PACKAGES[@]} present"
fi

# --- kernel headers for bcc ----------------------------------------------------
# bcc compiles against /lib/modules/$(uname -r)/build. Kernels without a Debian
# headers package (like the VM kernel here) fall back to Debian's generic
# headers, which bcc accepts for the program types this collection uses.
STEP="kernel headers"
KREL=$(uname -r)
KBUILD=/lib/modules/$KREL/build
KSOURCE=/lib/modules/$KREL/source
ARCH=$(dpkg --print-architecture)
GENERIC_META=linux-headers-$ARCH

generic_kver() {  # e.g. 6.1.0-56-amd64, from what the meta package depends on
    dpkg-query -W -f='${Depends}' "$GENERIC_META" 2>/dev/null \
        | grep -o 'linux-headers-[^ ,]*' | head -n1 | sed 's/^linux-headers-//'
}
generic_build()  { echo "/usr/src/linux-headers-$1"; }
generic_source() {
    local src
    src=$(readlink -f "/lib/modules/$1/source" 2>/dev/null || true)
    if [ -z "$src" ] || [ ! -d "$src" ]; then src=/usr/src/linux-headers-${1%-*}-common; fi
    echo "$src"
}

# True when build/source already point at the installed generic headers.
fallback_in_place() {
    local gk
    gk=$(generic_kver)
    [ -n "$gk" ] && [ -f "$KBUILD/Makefile" ] \
        && [ "$(readlink "$KBUILD")" = "$(generic_build "$gk")" ] \
        && [ "$(readlink "$KSOURCE")" = "$(generic_source "$gk")" ]
}

# Point $1 at $2, unless $1 is someone else's headers tree.
link_headers() {
    local link=$1 target=$2 current
    [ -d "$target" ] || die "expected headers directory $target is missing (is $GENERIC_META fully installed?)"
    if [ -L "$link" ]; then
        current=$(readlink "$link")
        [ "$current" = "$target" ] && return 0
        case "$current" in
            /usr/src/linux-headers-*) ;;              # an older generic fallback: replace it
            *) if [ -e "$link" ]; then die "$link points at $current, not generic headers; refusing to replace it"; fi ;;
        esac
    elif [ -e "$link" ]; then
        die "$link exists and is not a symlink; refusing to replace it"
    fi
    need_root "link $link"
    mkdir -p "$(dirname "$link")"
    ln -sfn "$target" "$link"
    changed "linked $link -> $target"
}

headers_note() {
    local gk
    gk=$(generic_kver)
    log "NOTE: running kernel $KREL has no Debian headers package; bcc uses the generic headers linux-headers-$gk ($KBUILD -> $(generic_build "$gk"))"
    summary "kernel headers" "linux-headers-$gk (generic fallback, see NOTE)"
}

if pkg_installed "linux-headers-$KREL"; then
    summary "kernel headers" "linux-headers-$KREL"
elif fallback_in_place; then
    headers_note
elif [ -f "$KBUILD/Makefile" ] && ! readlink "$KBUILD" | grep -q '^/usr/src/linux-headers-'; then
    summary "kernel headers" "$KBUILD (not from a package, left as is)"
else
    # Missing, or a stale generic fallback: prefer the running kernel's own package.
    apt_update_once
    if apt-cache show "linux-headers-$KREL" >/dev/null 2>&1; then
        apt_install "linux-headers-$KREL"
        summary "kernel headers" "linux-headers-$KREL"
    else
        pkg_installed "$GENERIC_META" || apt_install "$GENERIC_META"
        gk=$(generic_kver)
        [ -n "$gk" ] || die "cannot tell which headers $GENERIC_META provides"
        link_headers "$KBUILD" "$(generic_build "$gk")"
        link_headers "$KSOURCE" "$(generic_source "$gk")"
        headers_note
    fi
fi

# --- bpffs ---------------------------------------------------------------------
STEP="bpffs"
if mountpoint -q /sys/fs/bpf; then
    summary "bpffs" "mounted at /sys/fs/bpf"
else
    need_root "mount bpffs"
    mkdir -p /sys/fs/bpf
    mount -t bpf bpf /sys/fs/bpf || die "cannot mount bpffs at /sys/fs/bpf"
    changed "mounted bpffs at /sys/fs/bpf"
    summary "bpffs" "mounted at /sys/fs/bpf (now)"
fi

# --- target-side Python: what modules import on managed hosts ----------------
STEP="bcc check"
bcc_out=$(/usr/bin/python3 - 2>&1 <<'EOF'
from importlib.metadata import version
from bcc import BPF
import pyroute2
BPF(text="int f(struct __sk_buff *s) { return 0; }")
print("pyroute2 " + version("pyroute2"))
EOF
) || { printf '%s\n' "$bcc_out" | tail -n 15 >&2; die "/usr/bin/python3 cannot compile a BPF program with bcc (kernel headers at $KBUILD?)"; }
summary "bcc" "/usr/bin/python3 compiles BPF; $(printf '%s\n' "$bcc_out" | tail -n1)"

# --- controller venv -----------------------------------------------------------
STEP="controller venv"
PY=$(command -v python3)
py_version() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'; }
want=$(py_version "$PY")
have=
if [ -x "$VENV/bin/python" ]; then
    have=$(py_version "$VENV/bin/python" 2>/dev/null || true)
fi
if [ "${have%.*}" != "${want%.*}" ]; then
    if [ -e "$VENV" ]; then
        log "recreating .venv (its Python '${have:-broken}' is not $PY's $want)"
        rm -rf "$VENV"
    fi
    if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian's python3 ships venv's ensurepip separately.
        rm -rf "$VENV"
        apt_install python3-venv
        "$PY" -m venv "$VENV" || die "$PY -m venv $VENV failed"
    fi
    have=$(py_version "$VENV/bin/python")
    changed "created .venv with $PY ($have)"
fi

stamp="$(sha256sum "$REQ" | cut -d' ' -f1) python-$have"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$stamp" ]; then
    summary "venv" ".venv (Python $have), requirements-dev.txt up to date"
else
    log "pip install -r requirements-dev.txt"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ" \
        || die "pip install -r requirements-dev.txt failed"
    printf '%s\n' "$stamp" >"$STAMP"
    changed "installed requirements-dev.txt into .venv"
    summary "venv" ".venv (Python $have), requirements-dev.txt installed"
fi

# --- collection path: repo root is the collection root -------------------------
STEP="collections symlink"
if [ -L "$COLLECTION_LINK" ] && [ "$(readlink "$COLLECTION_LINK")" = "$ROOT" ]; then
    :
elif [ -e "$COLLECTION_LINK" ] && [ ! -L "$COLLECTION_LINK" ]; then
    die "$COLLECTION_LINK exists and is not a symlink"
else
    mkdir -p "$(dirname "$COLLECTION_LINK")"
    ln -sfn "$ROOT" "$COLLECTION_LINK"
    changed "linked collections/ansible_collections/palisade/ebpf -> $ROOT"
fi
summary "collections" "collections/ansible_collections/palisade/ebpf -> $ROOT"

# --- ansible-test offline: stand-in for the get-pip.py download ----------------
STEP="ansible-test get-pip stand-in"
pip_ver=$(sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" "$VENV"/lib/python*/site-packages/ansible_test/_internal/python_requirements.py 2>/dev/null | head -n1)
pip_ver=${pip_ver:-24.2}
GET_PIP=$HOME/.ansible/test/cache/get_pip_${pip_ver//./_}.py
if ! cmp -s "$ROOT/scripts/get_pip_offline.py" "$GET_PIP"; then
    install -D -m 0644 "$ROOT/scripts/get_pip_offline.py" "$GET_PIP"
    changed "installed ansible-test get-pip stand-in at $GET_PIP"
fi
summary "ansible-test" "offline get-pip $pip_ver stand-in at $GET_PIP"

# --- summary -------------------------------------------------------------------
STEP=summary
log "done in $((SECONDS - STARTED))s, $( [ ${#CHANGES[@]} -eq 0 ] && echo 'nothing changed' || echo "${#CHANGES[@]} change(s)")"
printf '%s\n' "${SUMMARY[@]}"
