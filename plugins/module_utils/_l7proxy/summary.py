# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The l7proxy module's ``before``/``after``: a summary of the proxy it runs
(its maps hold the fleet's IP table, too many entries to list; the
``changes`` say what was written)::

    {"running": true, "pid": 4242,             the HAProxy master
     "config": "3f1c9a0d2b7e4c11",             sha256 (16 digits) of the haproxy.cfg it loaded
     "maps": {"rules": {"entries": 2,          each map file the module writes: its entries and
                        "sha256": "9b0e..."}}, the sha256 (16 digits) of its text
     "registered": true,                       its listener is in slot 0 of the proxy socket map
     "tcp_early_demux": "0"}                   the sysctl in the host's namespace (null: absent)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

DIGITS = 16


def map_file(entries, text):
    """The summary of one map file: its number of entries, a digest of its text."""
    return {"entries": entries, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()[:DIGITS]}


def summary(running=False, pid=None, config=None, maps=None, registered=False, tcp_early_demux=None):
    return {
        "running": bool(running),
        "pid": pid,
        "config": config[:DIGITS] if config else None,
        "maps": dict(maps or {}),
        "registered": bool(registered),
        "tcp_early_demux": tcp_early_demux,
    }


def lines(item):
    """One summary as ``--diff`` lines."""
    if item["running"]:
        head = "haproxy: running, master pid %s, configuration %s" % (
            item["pid"] if item["pid"] else "not known yet", item["config"] or "not recorded")
    else:
        head = "haproxy: not running"
    out = [head]
    out.extend("map %s: %d entries, sha256 %s" % (name, item["maps"][name]["entries"], item["maps"][name]["sha256"])
               for name in sorted(item["maps"]))
    out.append("listener %s in the proxy socket map" % ("registered" if item["registered"] else "not registered"))
    if item["tcp_early_demux"] is not None:
        out.append("sysctl net.ipv4.tcp_early_demux = %s" % item["tcp_early_demux"])
    return out


def header(directory):
    return "L7 proxy in %s (a summary: process, configuration, map files, listener registration)" % directory
