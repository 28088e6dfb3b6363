# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath module's ``before``/``after``: a summary of what it owns on
the host, since the objects themselves (60,000 IP table entries and more)
are too many to return or diff line by line. The ``changes`` carry the
exact writes.

A summary::

    {"programs": ["3f1c9a0d2b7e4c11"],               renderings pinned under progs/
     "maps": ["endpoints-7724f1f7", ...],             pins under maps/
     "attached": {"lxc1": {"egress": "to_endpoint:3f1c9a0d2b7e4c11",
                           "ingress": "from_endpoint:3f1c9a0d2b7e4c11"}},
     "steering": ["sk_lookup"],                       the L7 redirect's: sk_lookup or tproxy
     "entries": {"endpoints": 1, "ipcache_host": 3,   entries of the reconciled maps
                 "ipcache_prefix": 1, "policy": 2}}   (at this rendering's layout)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import tc as dp_tc

SK_LOOKUP = "sk_lookup"
TPROXY = "tproxy"


def summary(programs=(), pins=(), attached=None, steering=(), entries=None):
    return {
        "programs": sorted(programs),
        "maps": sorted(pins),
        "attached": attached or {},
        "steering": sorted(steering),
        "entries": dict(entries or {}),
    }


def attached_program(filter_name):
    """``palisade:<program>:<hash>`` -> ``<program>:<hash>``."""
    if filter_name.startswith(dp_tc.NAME_PREFIX):
        return filter_name[len(dp_tc.NAME_PREFIX):]
    return filter_name


def interface_name(names, ifindex):
    return names.get(ifindex, "ifindex %d" % ifindex)


def attached_from_filters(filters, names):
    """The collection's filters ({ifindex: {direction: {name, owned}}}, as
    tc.TC reads them) -> {interface: {direction: program:hash}};
    ``names``: ifindex -> interface name."""
    out = {}
    for ifindex, hooks in filters.items():
        for direction, info in hooks.items():
            if info["owned"]:
                out.setdefault(interface_name(names, ifindex), {})[direction] = attached_program(info["name"])
    return out


def lines(item):
    """One summary as ``--diff`` lines, in a fixed order."""
    out = ["program %s" % digest for digest in item["programs"]]
    out.extend("map %s" % pin for pin in item["maps"])
    for ifname in sorted(item["attached"]):
        for direction, program in sorted(item["attached"][ifname].items()):
            out.append("tc %s of %s: %s" % (direction, ifname, program))
    out.extend("L7 steering: %s" % how for how in item["steering"])
    out.extend("entries of %s: %d" % (name, count) for name, count in sorted(item["entries"].items()))
    return out


def header(bpffs_dir):
    return "datapath of %s (a summary: pinned programs and maps, tc attachments, L7 steering, entries per map)" % bpffs_dir
