# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tc attachments through netlink (pyroute2): want / have / diff per hook.

The collection's filters are cls_bpf, direct-action, on the clsact qdisc of
an endpoint's host-side interface (both directions) and, when the L7 proxy is
on, of the host's uplinks (ingress), at priority 1 (first: nothing installed
at a later priority can let a packet bypass the policy) with handle 0xc9 (201,
the collection's number, as the route protocol) and a name starting with
"palisade:". A filter with that priority and handle but another name is
someone else's and is never replaced or removed.

Replacing is atomic: NLM_F_REPLACE on the same priority/handle swaps the
program in place, so there is no moment without a program.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import socket

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import (
    DatapathError,
    missing_kernel_feature,
)

PRIORITY = 1
HANDLE = 0xC9
NAME_PREFIX = "palisade:"
ETH_P_ALL = 0x0003
# tc direction -> clsact parent
PARENTS = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}
# Which program runs where, by the interface's role. An endpoint's host-side
# interface: packets it receives leave the endpoint (its egress policy), packets
# it sends enter the endpoint (ingress policy); see abi.DIR_*. An uplink: packets
# from other hosts, whose L7 redirect must be decided before routing.
ENDPOINT_PROGRAMS = {"ingress": "from_endpoint", "egress": "to_endpoint"}
UPLINK_PROGRAMS = {"ingress": "from_network"}


def filter_name(hook, program_hash):
    return "%s%s:%s" % (NAME_PREFIX, hook, program_hash)


def _teach_pyroute2_bpf_ids():
    """pyroute2 0.7 decodes cls_bpf options without TCA_BPF_TAG/TCA_BPF_ID
    (attributes 10 and 11); add them so a dump says which program is attached."""
    from pyroute2.netlink.rtnl.tcmsg import sched_bpf  # pylint: disable=import-outside-toplevel

    options = sched_bpf.options
    names = [entry[0] for entry in options.nla_map]
    if "TCA_BPF_ID" in names:
        return
    known = list(options.nla_map)
    while len(known) < 9:
        known.append(("TCA_BPF_UNUSED_%d" % len(known), "none"))
    known[9:] = [("TCA_BPF_FLAGS_GEN", "uint32"), ("TCA_BPF_TAG", "hex"), ("TCA_BPF_ID", "uint32")]
    options.nla_map = tuple(known)
    # nlmsg_base compiles nla_map once per class, on first use: redo it.
    setattr(options, "_nlmsg_base__compiled_nla", False)


class TC(object):
    """Observe and change the collection's tc filters in the current netns."""

    def __init__(self, ipr):
        _teach_pyroute2_bpf_ids()
        self.ipr = ipr

    @staticmethod
    def links():
        """ifname -> ifindex for every link of this netns (if_nameindex: no
        netlink decoding of every link's attributes)."""
        return dict((name, index) for index, name in socket.if_nameindex())

    def clsact_links(self):
        """ifindexes that have a clsact qdisc."""
        out = set()
        for msg in self.ipr.get_qdiscs():
            if msg.get_attr("TCA_KIND") == "clsact":
                out.add(msg["index"])
        return out

    def filters(self, ifindex):
        """Our filters on one link: {tc direction: {name, prog_id, owned}}; a
        filter at our priority and handle that is not ours has owned False."""
        found = {}
        for direction, parent in PARENTS.items():
            try:
                msgs = self.ipr.get_filters(index=ifindex, parent=parent)
            except Exception as exc:  # pylint: disable=broad-except
                if getattr(exc, "code", None) in (errno.EINVAL, errno.ENOENT, errno.ENODEV):
                    continue
                raise
            for msg in msgs:
                if msg["handle"] != HANDLE or (msg["info"] >> 16) != PRIORITY or msg.get_attr("TCA_KIND") != "bpf":
                    continue
                opts = msg.get_attr("TCA_OPTIONS")
                if opts is None:
                    continue
                name = opts.get_attr("TCA_BPF_NAME") or ""
                found[direction] = {
                    "name": name,
                    "prog_id": opts.get_attr("TCA_BPF_ID"),
                    "owned": name.startswith(NAME_PREFIX),
                }
        return found

    def all_filters(self):
        """Filters at our priority and handle on every link with clsact:
        {ifindex: {direction: info}} (one dump per direction and link)."""
        out = {}
        for ifindex in sorted(self.clsact_links()):
            hooks = self.filters(ifindex)
            if hooks:
                out[ifindex] = hooks
        return out

    def owned_filters(self):
        """Every filter of ours in this netns: {ifindex: {direction: info}}."""
        out = {}
        for ifindex, hooks in self.all_filters().items():
            owned = dict((hook, info) for hook, info in hooks.items() if info["owned"])
            if owned:
                out[ifindex] = owned
        return out

    def attach(self, ifindex, direction, prog_fd, name):
        """Attach, or atomically replace, our filter in one direction."""
        parent = PARENTS[direction]
        try:
            self.ipr.tc("add", "clsact", ifindex)
        except Exception as exc:  # pylint: disable=broad-except
            code = getattr(exc, "code", None)
            if code == errno.EEXIST:
                pass
            elif code in (errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL):
                raise missing_kernel_feature("the clsact qdisc", "CONFIG_NET_SCH_INGRESS (sch_clsact)")
            else:
                raise DatapathError("cannot add the clsact qdisc to ifindex %d: %s" % (ifindex, exc))
        try:
            self.ipr.tc("replace-filter", "bpf", ifindex, HANDLE, fd=prog_fd, name=name, parent=parent,
                        prio=PRIORITY, protocol=ETH_P_ALL, direct_action=True)
        except Exception as exc:  # pylint: disable=broad-except
            if getattr(exc, "code", None) in (errno.ENOENT, errno.EOPNOTSUPP) and "bpf" in str(exc):
                raise missing_kernel_feature("the bpf tc classifier", "CONFIG_NET_CLS_BPF (cls_bpf)")
            raise DatapathError("cannot attach %s to tc %s of ifindex %d: %s" % (name, direction, ifindex, exc))

    def detach(self, ifindex, direction):
        parent = PARENTS[direction]
        try:
            self.ipr.tc("del-filter", "bpf", ifindex, HANDLE, parent=parent, prio=PRIORITY, protocol=ETH_P_ALL)
        except Exception as exc:  # pylint: disable=broad-except
            if getattr(exc, "code", None) not in (errno.ENOENT, errno.ENODEV, errno.EINVAL):
                raise DatapathError("cannot detach tc %s filter of ifindex %d: %s" % (direction, ifindex, exc))
