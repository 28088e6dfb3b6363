# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the integration tests may create on this machine, as a snapshot to
compare before and after a test module (tests/integration/conftest.py).

Everything a test makes is named so that it can be removed by name; what is
in the snapshot after a module and was not before is something the module
left behind.
"""

import os
import re
import time

from ansible_collections.palisade.ebpf.plugins.module_utils import _defaults as defaults
from tests.support.kernel import netns_list, sh

ROUTE_PROTO = str(defaults.ROUTE_PROTOCOL)
BPFFS = os.path.dirname(defaults.BPFFS_ROOT)   # scratch pins of the datapath tests sit at its top level
STATE_ROOTS = (defaults.STATE_ROOT, defaults.LAB_STATE_ROOT)


def _lines(*cmd):
    return [line.strip() for line in sh(*cmd).splitlines() if line.strip()]


def _entries(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _tree(path):
    found = []
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            found.append(os.path.join(dirpath, name))
    return sorted(found)


def _links():
    # "3: name@peer: <...>" -> "name"
    return sorted(line.split(":", 2)[1].strip().split("@")[0] for line in _lines("ip", "-o", "link", "show"))


def _rules():
    # iproute2 6.1's `ip rule show` ignores a protocol filter: pick them out of the detailed listing.
    return [line for line in _lines("ip", "-d", "rule", "show") + _lines("ip", "-6", "-d", "rule", "show")
            if re.search(r"\bproto %s\b" % ROUTE_PROTO, line)]


def processes(markers):
    """{pid: command line} of the live processes whose command line
    contains one of ``markers`` (directories the tests keep state in)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            with open("/proc/%s/stat" % name) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (IOError, OSError, IndexError):
            continue  # gone meanwhile, or a kernel thread
        if state not in ("Z", "X") and any(marker in cmdline for marker in markers):
            found[int(name)] = cmdline
    return found


def snapshot(markers):
    """Everything the integration tests may create, each kind a set of names."""
    return {
        "network namespaces": set(netns_list()),
        "links in the root namespace": set(_links()),
        "routes with protocol %s in the root namespace" % ROUTE_PROTO: set(
            _lines("ip", "route", "show", "table", "all", "proto", ROUTE_PROTO)
            + _lines("ip", "-6", "route", "show", "table", "all", "proto", ROUTE_PROTO)),
        "rules with protocol %s in the root namespace" % ROUTE_PROTO: set(_rules()),
        "nft tables in the root namespace": set(_lines("nft", "list", "tables")),
        "bpffs entries": set(os.path.join(BPFFS, name) for name in _entries(BPFFS)) | set(_tree(defaults.BPFFS_ROOT)),
        "state directories": set(os.path.join(root, name) for root in STATE_ROOTS for name in _entries(root)),
        "processes": set("%d: %s" % item for item in processes(markers).items()),
    }


def _ancestors(pid):
    chain = []
    while pid > 1 and len(chain) < 100:
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (IOError, OSError, IndexError, ValueError):
            break
        chain.append(pid)
    return chain


PID_KINDS = ("network namespaces", "links in the root namespace", "bpffs entries")


def someone_elses(name, session=None):
    """Whether the scratch name ``name`` (``<tag>-<pid>[-...]``) carries the
    pid of a live process outside this test session: work in progress of
    something else on the machine, not a leftover of ours."""
    session = session or os.getpid()
    for number in re.findall(r"(?:^|[-/])([0-9]{3,7})(?=$|[-/])", name):
        pid = int(number)
        if pid != session and os.path.exists("/proc/%d" % pid) and session not in _ancestors(pid):
            return True
    return False


def left_behind(before, markers, settle=5.0):
    """What is in a snapshot now and was not in ``before``: {kind: sorted
    names}, empty when nothing was left. Processes get ``settle`` seconds to
    finish exiting (a killed server's children, sshd's sessions); names that
    carry the pid of another live process on the machine are not counted."""
    deadline = time.time() + settle
    while True:
        after = snapshot(markers)
        new = dict((kind, sorted(name for name in after[kind] - before.get(kind, set())
                                 if kind not in PID_KINDS or not someone_elses(name))) for kind in after)
        new = dict((kind, names) for kind, names in new.items() if names)
        if set(new) - {"processes"} or not new or time.time() > deadline:
            return new
        time.sleep(0.2)


def describe(new):
    return "\n".join("  %s: %s" % (kind, ", ".join(names)) for kind, names in sorted(new.items()))
