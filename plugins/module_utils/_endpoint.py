# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Endpoint plumbing: want / have / diff over one endpoint's kernel objects.

An endpoint is a network namespace joined to its host by a veth pair:

    host netns                         endpoint netns
    lxcXXXXXXXX (host MAC) <--veth--> eth0 (endpoint MAC, ipv4/32)
    route ipv4/32 dev lxcXXXXXXXX      neigh 169.254.1.1 -> host MAC (permanent)
                                       route 169.254.1.1 dev eth0 scope link
                                       default via 169.254.1.1

The gateway needs no address on the host: a permanent neighbour entry sends
every packet to the host-side MAC, where the host routes it. An endpoint that
names an existing ``interface`` is adopted: only the host route is managed.

``plan`` is pure (dicts in, actions out) so it is unit-tested without a kernel;
``Plumber`` observes and applies with pyroute2.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import ROUTE_PROTOCOL

ADOPTED_ALIAS_PREFIX = naming.ADOPTED_IFALIAS_PREFIX
PEER_IFNAME = naming.ENDPOINT_PEER_IFNAME
GATEWAY = naming.ENDPOINT_GATEWAY


def want_endpoint(ep, prefix=None):
    """The kernel objects one endpoint should have, as plain data."""
    ep_mac, host_mac = naming.endpoint_macs(ep)
    adopted = bool(ep.get("interface"))
    return {
        "key": naming.endpoint_key(ep),
        "ipv4": ep["ipv4"],
        "ifname": naming.endpoint_ifname(ep),
        "adopted": adopted,
        "alias": (ADOPTED_ALIAS_PREFIX + naming.endpoint_key(ep)) if adopted else naming.endpoint_ifalias(ep),
        "netns": None if adopted else naming.endpoint_netns(ep, prefix),
        "mac": ep_mac,
        "host_mac": host_mac,
        "labels": dict(ep.get("labels") or {}),
    }


def describe(want):
    """One human line for diffs: who the endpoint is, not just numbers."""
    labels = ",".join("%s=%s" % kv for kv in sorted(want.get("labels", {}).items()))
    where = "adopted %s" % want["ifname"] if want["adopted"] else "%s <-> %s:%s" % (want["ifname"], want["netns"], PEER_IFNAME)
    text = "%s %s/32 %s" % (want["key"], want["ipv4"], where)
    return text + (" [%s]" % labels if labels else "")


def plan_endpoint(want, have):
    """Actions that take one endpoint from ``have`` to ``want``.

    ``have`` keys (all optional): link {alias, mac, up, kind}, host_route (dev
    name or None), netns_exists, peer {mac, up, addrs, routes, neigh},
    lo_up. Returns a list of (action, detail) tuples, empty when converged.
    """
    actions = []
    link = have.get("link")
    if want["adopted"]:
        if link is None:
            actions.append(("missing_interface", want["ifname"]))
            return actions
        if link.get("alias") != want["alias"]:
            actions.append(("set_alias", want["alias"]))
        if have.get("host_route") != want["ifname"]:
            actions.append(("host_route", "%s/32 dev %s" % (want["ipv4"], want["ifname"])))
        return actions

    if not have.get("netns_exists"):
        actions.append(("create_netns", want["netns"]))
    peer = have.get("peer")
    pair_ok = (
        link is not None and link.get("kind") == "veth" and link.get("mac") == want["host_mac"]
        and peer is not None and peer.get("mac") == want["mac"]
    )
    if link is not None and not pair_ok:
        # A half-plumbed or foreign-looking pair: rebuild it from scratch.
        actions.append(("delete_link", want["ifname"]))
    if not pair_ok:
        actions.append(("create_veth", "%s <-> %s:%s" % (want["ifname"], want["netns"], PEER_IFNAME)))
        fresh = {"ipv6_off": False if have.get("ipv6_supported", True) else None}
        peer, link = dict(fresh), dict(fresh)
    if link.get("alias") != want["alias"]:
        actions.append(("set_alias", want["alias"]))
    if not link.get("up"):
        actions.append(("host_link_up", want["ifname"]))
    if not have.get("lo_up"):
        actions.append(("peer_lo_up", "lo"))
    if not peer.get("up"):
        actions.append(("peer_link_up", PEER_IFNAME))
    # The datapath is IPv4-only and drops IPv6: without this, link-local
    # chatter would fill the drop counters of every endpoint.
    if peer.get("ipv6_off") is False:
        actions.append(("peer_ipv6_off", "net.ipv6.conf.%s.disable_ipv6=1" % PEER_IFNAME))
    if link.get("ipv6_off") is False:
        actions.append(("host_ipv6_off", "net.ipv6.conf.%s.disable_ipv6=1" % want["ifname"]))
    if sorted(peer.get("addrs") or []) != [want["ipv4"] + "/32"]:
        actions.append(("peer_addr", "%s/32 dev %s" % (want["ipv4"], PEER_IFNAME)))
    if peer.get("neigh") != want["host_mac"]:
        actions.append(("peer_neigh", "%s lladdr %s" % (GATEWAY, want["host_mac"])))
    routes = peer.get("routes") or {}
    if routes.get("gateway") is not True:
        actions.append(("peer_gateway_route", "%s dev %s scope link" % (GATEWAY, PEER_IFNAME)))
    if routes.get("default") != GATEWAY:
        actions.append(("peer_default_route", "default via %s" % GATEWAY))
    if have.get("host_route") != want["ifname"]:
        actions.append(("host_route", "%s/32 dev %s" % (want["ipv4"], want["ifname"])))
    return actions


def plan_purge(wanted_aliases, links):
    """Owned endpoint links that no longer belong. ``links``: [{ifname, alias}]."""
    stale = []
    for link in links:
        alias = link.get("alias") or ""
        if alias in wanted_aliases:
            continue
        if alias.startswith(naming.IFALIAS_PREFIX):
            stale.append(("delete_link", link["ifname"], alias[len(naming.IFALIAS_PREFIX):]))
        elif alias.startswith(ADOPTED_ALIAS_PREFIX):
            stale.append(("release_adopted", link["ifname"], alias[len(ADOPTED_ALIAS_PREFIX):]))
    return stale


class EndpointError(Exception):
    pass


class Plumber(object):
    """Observes and changes endpoint plumbing through netlink (pyroute2)."""

    def __init__(self, ipr_factory, netns_mod, route_protocol=ROUTE_PROTOCOL):
        self._ipr_factory = ipr_factory  # pyroute2.IPRoute
        self._netns = netns_mod          # pyroute2.netns
        self.protocol = route_protocol
        self.ipr = ipr_factory()

    def close(self):
        self.ipr.close()

    # -- observation ---------------------------------------------------
    def host_links(self):
        """Every link of the host netns: ifname -> {index, alias, mac, up, kind}."""
        links = {}
        for msg in self.ipr.get_links():
            info = msg.get_attr("IFLA_LINKINFO")
            links[msg.get_attr("IFLA_IFNAME")] = {
                "ifname": msg.get_attr("IFLA_IFNAME"),
                "index": msg["index"],
                "alias": msg.get_attr("IFLA_IFALIAS"),
                "mac": msg.get_attr("IFLA_ADDRESS"),
                "up": bool(msg["flags"] & 1),
                "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                "ipv6_off": ipv6_disabled(msg.get_attr("IFLA_IFNAME")),
            }
        return links

    def host_routes(self):
        """Owned /32 host routes: ipv4 -> oif index."""
        routes = {}
        for msg in self.ipr.get_routes(family=2, table=254, proto=self.protocol):
            if msg["dst_len"] == 32 and not msg.get_attr("RTA_GATEWAY"):
                routes[msg.get_attr("RTA_DST")] = msg.get_attr("RTA_OIF")
        return routes

    def observe_peer(self, netns):
        """What the endpoint netns holds: lo state and our eth0's settings."""
        if not os.path.exists(os.path.join("/run/netns", netns)):
            return {"netns_exists": False}
        self._netns.pushns(netns)
        try:
            ipr = self._ipr_factory()
            try:
                state = {"netns_exists": True, "lo_up": False, "peer": None}
                eth = None
                for msg in ipr.get_links():
                    name = msg.get_attr("IFLA_IFNAME")
                    if name == "lo":
                        state["lo_up"] = bool(msg["flags"] & 1)
                    elif name == PEER_IFNAME:
                        eth = msg
                if eth is not None:
                    idx = eth["index"]
                    peer = {
                        "index": idx,
                        "mac": eth.get_attr("IFLA_ADDRESS"),
                        "up": bool(eth["flags"] & 1),
                        "addrs": ["%s/%d" % (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                                  for a in ipr.get_addr(family=2, index=idx)],
                        "neigh": None,
                        "routes": {},
                    }
                    for n in ipr.get_neighbours(family=2, ifindex=idx):
                        if n.get_attr("NDA_DST") == GATEWAY and n["state"] & 0x80:  # NUD_PERMANENT
                            peer["neigh"] = n.get_attr("NDA_LLADDR")
                    for r in ipr.get_routes(family=2, table=254):
                        if r.get_attr("RTA_OIF") != idx:
                            continue
                        if r["dst_len"] == 0:
                            peer["routes"]["default"] = r.get_attr("RTA_GATEWAY")
                        elif r["dst_len"] == 32 and r.get_attr("RTA_DST") == GATEWAY:
                            peer["routes"]["gateway"] = True
                    peer["ipv6_off"] = ipv6_disabled(PEER_IFNAME)  # read inside the endpoint's netns
                    state["peer"] = peer
                return state
            finally:
                ipr.close()
        finally:
            self._netns.popns()

    def observe(self, want, links, host_routes):
        have = {"link": links.get(want["ifname"]), "ipv6_supported": os.path.isdir("/proc/sys/net/ipv6/conf")}
        oif = host_routes.get(want["ipv4"])
        have["host_route"] = None
        if oif is not None:
            for link in links.values():
                if link["index"] == oif:
                    have["host_route"] = link["ifname"]
        if not want["adopted"]:
            have.update(self.observe_peer(want["netns"]))
        return have

    # -- changes -------------------------------------------------------
    def apply(self, want, actions):
        kinds = [action[0] for action in actions]
        if "missing_interface" in kinds:
            raise EndpointError("endpoint %s: interface %s does not exist on this host (an endpoint with 'interface' is adopted, not created)"
                                % (want["key"], want["ifname"]))
        if "create_netns" in kinds:
            self._netns.create(want["netns"])
        if "delete_link" in kinds:
            self.ipr.link("del", ifname=want["ifname"])
        if "create_veth" in kinds:
            self.ipr.link("add", ifname=want["ifname"], kind="veth", address=want["host_mac"],
                          peer={"ifname": PEER_IFNAME, "address": want["mac"], "net_ns_fd": want["netns"]})
        index = self.ipr.link_lookup(ifname=want["ifname"])[0]
        if "set_alias" in kinds:
            self.ipr.link("set", index=index, ifalias=want["alias"])
        if "host_link_up" in kinds:
            self.ipr.link("set", index=index, state="up")
        if "host_ipv6_off" in kinds:
            disable_ipv6(want["ifname"])
        peer_kinds = [k for k in kinds if k.startswith("peer_")]
        if peer_kinds:
            self._apply_peer(want, peer_kinds)
        if "host_route" in kinds:
            self.ipr.route("replace", dst=want["ipv4"], dst_len=32, oif=index, scope=253,
                           proto=self.protocol, table=254)

    def _apply_peer(self, want, kinds):
        self._netns.pushns(want["netns"])
        try:
            ipr = self._ipr_factory()
            try:
                idx = ipr.link_lookup(ifname=PEER_IFNAME)[0]
                if "peer_lo_up" in kinds:
                    ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                if "peer_link_up" in kinds:
                    ipr.link("set", index=idx, state="up")
                if "peer_ipv6_off" in kinds:
                    disable_ipv6(PEER_IFNAME)  # this process is inside the endpoint's netns here
                if "peer_addr" in kinds:
                    for a in ipr.get_addr(family=2, index=idx):
                        ipr.addr("del", index=idx, address=a.get_attr("IFA_ADDRESS"), prefixlen=a["prefixlen"])
                    ipr.addr("add", index=idx, address=want["ipv4"], prefixlen=32)
                if "peer_neigh" in kinds:
                    ipr.neigh("replace", dst=GATEWAY, lladdr=want["host_mac"], ifindex=idx, state=0x80)
                if "peer_gateway_route" in kinds or "peer_addr" in kinds:
                    ipr.route("replace", dst=GATEWAY, dst_len=32, oif=idx, scope=253)
                if "peer_default_route" in kinds or "peer_addr" in kinds:
                    ipr.route("replace", dst="0.0.0.0", dst_len=0, gateway=GATEWAY, oif=idx)
            finally:
                ipr.close()
        finally:
            self._netns.popns()

    def purge(self, item):
        action, ifname, _key = item
        if action == "delete_link":
            self.ipr.link("del", ifname=ifname)
        elif action == "release_adopted":
            index = self.ipr.link_lookup(ifname=ifname)[0]
            for r in self.ipr.get_routes(family=2, table=254, proto=self.protocol, oif=index):
                self.ipr.route("del", dst=r.get_attr("RTA_DST"), dst_len=r["dst_len"], oif=index, table=254)
            self.ipr.link("set", index=index, ifalias="")


def _disable_ipv6_path(ifname):
    # A path, not dotted sysctl notation: interface names may contain dots.
    return os.path.join("/proc/sys/net/ipv6/conf", ifname, "disable_ipv6")


def ipv6_disabled(ifname):
    """True/False for an interface's disable_ipv6 in the current netns; None
    when the kernel has no IPv6 (nothing to do then)."""
    try:
        with open(_disable_ipv6_path(ifname)) as f:
            return f.read().strip() == "1"
    except (IOError, OSError):
        return None


def disable_ipv6(ifname):
    with open(_disable_ipv6_path(ifname), "w") as f:
        f.write("1")


def set_sysctl(path, value):
    """Write a /proc/sys value if it differs; True when written."""
    full = os.path.join("/proc/sys", path.replace(".", "/"))
    with open(full) as f:
        if f.read().strip() == str(value):
            return False
    with open(full, "w") as f:
        f.write(str(value))
    return True


def read_sysctl(path):
    with open(os.path.join("/proc/sys", path.replace(".", "/"))) as f:
        return f.read().strip()
