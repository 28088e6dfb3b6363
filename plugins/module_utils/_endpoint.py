# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Endpoint plumbing: want / have / plan / steps over one endpoint's kernel objects.

An endpoint is a network namespace joined to its host by a veth pair:

    host netns                         endpoint netns
    lxcXXXXXXXX (host MAC) <--veth--> eth0 (endpoint MAC, ipv4/32)
    route ipv4/32 dev lxcXXXXXXXX      neigh 169.254.1.1 -> host MAC (permanent)
                                       route 169.254.1.1 dev eth0 scope link
                                       default via 169.254.1.1

The gateway needs no address on the host: a permanent neighbour entry sends
every packet to the host-side MAC, where the host routes it. An endpoint that
names an existing ``interface`` is adopted: only the host route is managed.

``plan_endpoint`` is pure (dicts in, actions out) and ``endpoint_steps``
turns actions into the writes, each with its ``changes`` line, so what the
module reports is what ``Plumber`` does. ``Plumber`` observes and applies
with pyroute2; its routes go through the routing package's netlink backend.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from collections import namedtuple

try:
    from pyroute2 import IPRoute
    from pyroute2 import netns as pyroute2_netns
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # reported by the module through missing_required_lib()
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import ROUTE_PROTOCOL
from ansible_collections.palisade.ebpf.plugins.module_utils._result import gathered, reconciled
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.family import IPV4
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.names import MAIN_TABLE, RTPROT_STATIC
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.netlink import NetlinkBackend
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.routes import format_route, normalize_route

ADOPTED_ALIAS_PREFIX = naming.ADOPTED_IFALIAS_PREFIX
PEER_IFNAME = naming.ENDPOINT_PEER_IFNAME
GATEWAY = naming.ENDPOINT_GATEWAY
NUD_PERMANENT = 0x80
IFF_UP = 0x1
# The endpoint's own routes inside its namespace: nothing there purges by
# protocol, and 'static' is what they have always carried.
PEER_ROUTE_PROTOCOL = RTPROT_STATIC
IP_FORWARD_SYSCTL = "net.ipv4.ip_forward"


class EndpointError(Exception):
    pass


def want_endpoint(ep, prefix=None):
    """The kernel objects one endpoint should have, as plain data."""
    ep_mac, host_mac = naming.endpoint_macs(ep)
    adopted = bool(ep.get("interface"))
    return {
        "key": naming.endpoint_key(ep),
        "name": ep["name"],
        "namespace": ep.get("namespace") or "default",
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
    return render_entry(endpoint_entry(want))


def endpoint_entry(want):
    """A wanted endpoint in the module's input schema (ports, not plumbing, left out)."""
    entry = {"name": want["name"], "namespace": want["namespace"], "ipv4": want["ipv4"], "labels": dict(want["labels"])}
    if want["adopted"]:
        entry["interface"] = want["ifname"]
    else:
        entry["netns"] = want["netns"]
    return entry


def render_entry(entry):
    """The --diff line of one endpoint entry:
    'default/web 10.1.1.10/32 lxc1a2b3c4d <-> pal-e-default-web:eth0 [app=web]'."""
    key = naming.endpoint_key(entry)
    ipv4 = "%s/32" % entry["ipv4"] if entry.get("ipv4") else "(no host route)"
    ifname = naming.endpoint_ifname(entry)
    if entry.get("interface"):
        where = "adopted %s" % ifname
    else:
        where = "%s <-> %s:%s" % (ifname, entry.get("netns") or "(netns unknown)", PEER_IFNAME)
    labels = ",".join("%s=%s" % kv for kv in sorted((entry.get("labels") or {}).items()))
    text = "%s %s %s" % (key, ipv4, where)
    return text + (" [%s]" % labels if labels else "")


def plan_endpoint(want, have):
    """Actions that take one endpoint from ``have`` to ``want``, in the order
    they are applied.

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
    # The datapath is IPv4-only and drops IPv6: without this, link-local
    # chatter would fill the drop counters of every endpoint.
    if link.get("ipv6_off") is False:
        actions.append(("host_ipv6_off", "net.ipv6.conf.%s.disable_ipv6=1" % want["ifname"]))
    if not have.get("lo_up"):
        actions.append(("peer_lo_up", "lo"))
    if not peer.get("up"):
        actions.append(("peer_link_up", PEER_IFNAME))
    if peer.get("ipv6_off") is False:
        actions.append(("peer_ipv6_off", "net.ipv6.conf.%s.disable_ipv6=1" % PEER_IFNAME))
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


# --- routes of an endpoint, in the routing package's normal form ---------------------

def host_route(want):
    """'<ipv4>/32 dev <ifname> scope link table main', carried with the route protocol."""
    return normalize_route({"dst": want["ipv4"], "dev": want["ifname"]}, where="endpoint %s" % want["key"])


def peer_gateway_route():
    return normalize_route({"dst": GATEWAY, "dev": PEER_IFNAME}, where="endpoint gateway")


def peer_default_route():
    return normalize_route({"dst": "default", "gateway": GATEWAY, "dev": PEER_IFNAME}, where="endpoint default")


# --- steps: the writes, each with its changes line ------------------------------------

# kind: what Plumber does; line: the changes line; args: what it needs.
# Kinds starting with "peer_" run inside the endpoint's namespace.
Step = namedtuple("Step", "kind line args")


def _route_line(sign, route, netns=None):
    where = "%s: " % netns if netns else ""
    return "%s %sroute %s" % (sign, where, format_route(route))


def endpoint_steps(want, have, actions):
    """The writes that carry out ``actions`` (from plan_endpoint), in order."""
    kinds = [action[0] for action in actions]
    ns, ifname = want["netns"], want["ifname"]
    steps = []
    if "create_netns" in kinds:
        steps.append(Step("create_netns", "+ netns %s" % ns, {}))
    if "delete_link" in kinds:
        steps.append(Step("delete_link", "- link %s (a veth pair to rebuild)" % ifname, {"ifname": ifname}))
    if "create_veth" in kinds:
        steps.append(Step("create_veth", "+ veth %s <-> %s:%s" % (ifname, ns, PEER_IFNAME), {}))
    if "set_alias" in kinds:
        steps.append(Step("set_alias", "~ link %s alias %s" % (ifname, want["alias"]), {"alias": want["alias"]}))
    if "host_link_up" in kinds:
        steps.append(Step("link_up", "~ link %s up" % ifname, {}))
    if "host_ipv6_off" in kinds:
        steps.append(Step("ipv6_off", "~ sysctl net.ipv6.conf.%s.disable_ipv6=1" % ifname, {}))
    if "peer_lo_up" in kinds:
        steps.append(Step("peer_lo_up", "~ %s: link lo up" % ns, {}))
    if "peer_link_up" in kinds:
        steps.append(Step("peer_link_up", "~ %s: link %s up" % (ns, PEER_IFNAME), {}))
    if "peer_ipv6_off" in kinds:
        steps.append(Step("peer_ipv6_off", "~ %s: sysctl net.ipv6.conf.%s.disable_ipv6=1" % (ns, PEER_IFNAME), {}))
    # A new veth pair comes with a bare peer: nothing to delete or replace there.
    peer = {} if "create_veth" in kinds else (have.get("peer") or {})
    routes = peer.get("routes") or {}
    if "peer_addr" in kinds:
        for cidr in sorted(peer.get("addrs") or []):
            steps.append(Step("peer_del_addr", "- %s: address %s dev %s" % (ns, cidr, PEER_IFNAME), {"cidr": cidr}))
        cidr = "%s/32" % want["ipv4"]
        steps.append(Step("peer_add_addr", "+ %s: address %s dev %s" % (ns, cidr, PEER_IFNAME), {"cidr": cidr}))
    if "peer_neigh" in kinds:
        sign = "~" if peer.get("neigh") else "+"
        steps.append(Step("peer_neigh", "%s %s: neighbour %s lladdr %s dev %s permanent"
                          % (sign, ns, GATEWAY, want["host_mac"], PEER_IFNAME), {}))
    # A new address is followed by the endpoint's two routes, whatever they
    # looked like: they are written again, in place when they exist.
    if "peer_gateway_route" in kinds or "peer_addr" in kinds:
        route = peer_gateway_route()
        sign = "~" if routes.get("gateway") else "+"
        steps.append(Step("peer_route", _route_line(sign, route, ns), {"route": route}))
    if "peer_default_route" in kinds or "peer_addr" in kinds:
        route = peer_default_route()
        sign = "~" if routes.get("default") else "+"
        steps.append(Step("peer_route", _route_line(sign, route, ns), {"route": route}))
    if "host_route" in kinds:
        route = host_route(want)
        sign = "~" if have.get("host_route") else "+"
        steps.append(Step("host_route", _route_line(sign, route), {"route": route}))
    return steps


def purge_steps(item, routes_by_dev):
    """The writes that remove one stale endpoint (an item of plan_purge)."""
    action, ifname, key = item
    if action == "delete_link":
        return [Step("delete_link", "- link %s (%s)" % (ifname, key), {"ifname": ifname})]
    steps = [Step("delete_route", _route_line("-", route), {"route": route}) for route in routes_by_dev.get(ifname, ())]
    steps.append(Step("clear_alias", "~ link %s alias removed (%s released)" % (ifname, key), {"ifname": ifname}))
    return steps


class Plumber(object):
    """Observes and changes endpoint plumbing through netlink (pyroute2)."""

    def __init__(self, ipr_factory, netns_mod, route_protocol=ROUTE_PROTOCOL):
        self._ipr_factory = ipr_factory  # pyroute2.IPRoute
        self._netns = netns_mod          # pyroute2.netns
        self.protocol = route_protocol
        self.ipr = ipr_factory()
        self.routing = NetlinkBackend(self.ipr)

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
                "up": bool(msg["flags"] & IFF_UP),
                "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                "ipv6_off": ipv6_disabled(msg.get_attr("IFLA_IFNAME")),
            }
        return links

    def owned_host_routes(self, links):
        """Owned routes of the main table, in normal form, by dev name."""
        ifnames = dict((link["index"], name) for name, link in links.items())
        by_dev = {}
        for route in self.routing.routes(ifnames):
            if route["protocol"] == self.protocol and route["table"] == MAIN_TABLE and route["dev"]:
                by_dev.setdefault(route["dev"], []).append(route)
        return by_dev

    @staticmethod
    def host_routes(routes_by_dev):
        """Owned /32 host routes: ipv4 -> dev name."""
        routes = {}
        for dev, owned in routes_by_dev.items():
            for route in owned:
                if route["dst"].endswith("/32") and not route["gateway"]:
                    routes[route["dst"][:-3]] = dev
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
                ifnames = {}
                for msg in ipr.get_links():
                    name = msg.get_attr("IFLA_IFNAME")
                    ifnames[msg["index"]] = name
                    if name == "lo":
                        state["lo_up"] = bool(msg["flags"] & IFF_UP)
                    elif name == PEER_IFNAME:
                        eth = msg
                if eth is not None:
                    idx = eth["index"]
                    peer = {
                        "index": idx,
                        "mac": eth.get_attr("IFLA_ADDRESS"),
                        "up": bool(eth["flags"] & IFF_UP),
                        "addrs": ["%s/%d" % (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                                  for a in ipr.get_addr(family=IPV4.number, index=idx)],
                        "neigh": None,
                        "routes": {},
                    }
                    for n in ipr.get_neighbours(family=IPV4.number, ifindex=idx):
                        if n.get_attr("NDA_DST") == GATEWAY and n["state"] & NUD_PERMANENT:
                            peer["neigh"] = n.get_attr("NDA_LLADDR")
                    for route in NetlinkBackend(ipr).routes(ifnames):
                        if route["table"] != MAIN_TABLE or route["dev"] != PEER_IFNAME:
                            continue
                        if route["dst"] == IPV4.any_prefix:
                            peer["routes"]["default"] = route["gateway"]
                        elif route["dst"] == IPV4.host_prefix(GATEWAY):
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
        have["host_route"] = host_routes.get(want["ipv4"])
        if not want["adopted"]:
            have.update(self.observe_peer(want["netns"]))
        return have

    # -- changes -------------------------------------------------------
    def apply(self, want, steps):
        """Carry out the steps of one endpoint, in order."""
        peer = []
        for step in steps:
            if step.kind.startswith("peer_"):
                peer.append(step)
                continue
            if peer:
                self._apply_peer(want, peer)
                peer = []
            self._apply_host(want, step)
        if peer:
            self._apply_peer(want, peer)

    def _index(self, ifname):
        return self.ipr.link_lookup(ifname=ifname)[0]

    def _apply_host(self, want, step):
        kind, args = step.kind, step.args
        if kind == "create_netns":
            self._netns.create(want["netns"])
        elif kind == "delete_link":
            self.ipr.link("del", ifname=args["ifname"])
        elif kind == "create_veth":
            self.ipr.link("add", ifname=want["ifname"], kind="veth", address=want["host_mac"],
                          peer={"ifname": PEER_IFNAME, "address": want["mac"], "net_ns_fd": want["netns"]})
        elif kind == "set_alias":
            self.ipr.link("set", index=self._index(want["ifname"]), ifalias=args["alias"])
        elif kind == "link_up":
            self.ipr.link("set", index=self._index(want["ifname"]), state="up")
        elif kind == "ipv6_off":
            disable_ipv6(want["ifname"])
        elif kind == "host_route":
            self.routing.replace_route(args["route"], self.protocol, self._index(want["ifname"]))
        else:
            raise ValueError("not a host step: %s" % kind)

    def _apply_peer(self, want, steps):
        self._netns.pushns(want["netns"])
        try:
            ipr = self._ipr_factory()
            try:
                routing = NetlinkBackend(ipr)
                idx = ipr.link_lookup(ifname=PEER_IFNAME)[0]
                for step in steps:
                    if step.kind == "peer_lo_up":
                        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                    elif step.kind == "peer_link_up":
                        ipr.link("set", index=idx, state="up")
                    elif step.kind == "peer_ipv6_off":
                        disable_ipv6(PEER_IFNAME)  # this process is inside the endpoint's netns here
                    elif step.kind in ("peer_del_addr", "peer_add_addr"):
                        address, prefixlen = step.args["cidr"].split("/")
                        ipr.addr("del" if step.kind == "peer_del_addr" else "add", index=idx, address=address,
                                 prefixlen=int(prefixlen))
                    elif step.kind == "peer_neigh":
                        ipr.neigh("replace", dst=GATEWAY, lladdr=want["host_mac"], ifindex=idx, state=NUD_PERMANENT)
                    elif step.kind == "peer_route":
                        routing.replace_route(step.args["route"], PEER_ROUTE_PROTOCOL, idx)
                    else:
                        raise ValueError("not a peer step: %s" % step.kind)
            finally:
                ipr.close()
        finally:
            self._netns.popns()

    def purge(self, steps):
        """Carry out the steps of plan_purge items (delete links, release adopted ones)."""
        for step in steps:
            if step.kind == "delete_link":
                self.ipr.link("del", ifname=step.args["ifname"])
            elif step.kind == "delete_route":
                route = step.args["route"]
                self.routing.delete_route(route, self.protocol, self._index(route["dev"]))
            elif step.kind == "clear_alias":
                self.ipr.link("set", index=self._index(step.args["ifname"]), ifalias="")
            else:
                raise ValueError("not a purge step: %s" % step.kind)

    def set_ip_forward(self):
        set_sysctl(IP_FORWARD_SYSCTL, 1)


# --- observed endpoints ---------------------------------------------------------------

def _split_key(key):
    namespace, _sep, name = key.partition("/")
    return namespace, name


def observed_entries(plumber, links, host_routes, wants=(), haves=None, prefix=None):
    """The endpoints whose host-side interface carries the collection's alias,
    as entries of the input schema. The kernel holds no labels: a listed
    endpoint's are carried over so its line compares equal when converged.
    ``haves`` ({alias: have}) saves observing a listed endpoint's peer again."""
    by_alias = dict((w["alias"], w) for w in wants)
    haves = haves or {}
    ipv4_by_dev = dict((dev, ipv4) for ipv4, dev in host_routes.items())
    entries = []
    for link in sorted(links.values(), key=lambda link: link["alias"] or ""):
        alias = link.get("alias") or ""
        if alias.startswith(naming.IFALIAS_PREFIX):
            adopted, key = False, alias[len(naming.IFALIAS_PREFIX):]
        elif alias.startswith(ADOPTED_ALIAS_PREFIX):
            adopted, key = True, alias[len(ADOPTED_ALIAS_PREFIX):]
        else:
            continue
        namespace, name = _split_key(key)
        entry = {"name": name, "namespace": namespace, "ipv4": ipv4_by_dev.get(link["ifname"])}
        want = by_alias.get(alias)
        if want is not None:
            entry["labels"] = dict(want["labels"])
        if adopted:
            entry["interface"] = link["ifname"]
        else:
            # Where the peer end is: the listed (or derived) namespace, if the
            # endpoint's eth0 is really there.
            if want is not None and alias in haves:
                netns, peer = want["netns"], haves[alias].get("peer")
            else:
                netns = naming.endpoint_netns(entry, prefix)
                peer = plumber.observe_peer(netns).get("peer")
            ep_mac = naming.endpoint_macs(entry)[0]
            if peer is not None and peer.get("mac") == ep_mac:
                entry["netns"] = netns
        entries.append(entry)
    return entries


def _entry_sort_key(entry):
    return naming.endpoint_key(entry)


def run(plumber, endpoints, purge=True, prefix=None, check_mode=False, state="present"):
    """palisade.ebpf.endpoint: plumb ``endpoints`` (or with state=gathered
    report the endpoints this host has); the module result."""
    if state == "gathered":
        if endpoints:
            raise EndpointError("state=gathered only reads the endpoints of this host: leave endpoints empty")
        links = plumber.host_links()
        host_routes = plumber.host_routes(plumber.owned_host_routes(links))
        entries = observed_entries(plumber, links, host_routes, prefix=prefix)
        return gathered(sorted(entries, key=_entry_sort_key))

    wants = [want_endpoint(ep, prefix) for ep in endpoints]
    links = plumber.host_links()
    routes_by_dev = plumber.owned_host_routes(links)
    host_routes = plumber.host_routes(routes_by_dev)
    plans, haves = [], {}
    for want in wants:
        have = haves[want["alias"]] = plumber.observe(want, links, host_routes)
        actions = plan_endpoint(want, have)
        if any(action[0] == "missing_interface" for action in actions):
            raise EndpointError("endpoint %s: interface %s does not exist on this host (an endpoint with 'interface' is adopted, not created)"
                                % (want["key"], want["ifname"]))
        plans.append((want, endpoint_steps(want, have, actions)))
    before = observed_entries(plumber, links, host_routes, wants, haves, prefix)
    stale = plan_purge(set(w["alias"] for w in wants), links.values()) if purge else []
    stale_steps = [purge_steps(item, routes_by_dev) for item in stale]
    forward = read_sysctl(IP_FORWARD_SYSCTL) != "1"

    changes = ["~ sysctl %s=1" % IP_FORWARD_SYSCTL] if forward else []
    for _want, steps in plans:
        changes.extend(step.line for step in steps)
    for steps in stale_steps:
        changes.extend(step.line for step in steps)

    if changes and not check_mode:
        if forward:
            plumber.set_ip_forward()
        for want, steps in plans:
            if steps:
                plumber.apply(want, steps)
        for steps in stale_steps:
            plumber.purge(steps)

    stale_keys = set(key for _action, _ifname, key in stale)
    listed = set(w["key"] for w in wants)
    kept = [e for e in before if naming.endpoint_key(e) not in listed and naming.endpoint_key(e) not in stale_keys]
    after = sorted([endpoint_entry(w) for w in wants] + kept, key=_entry_sort_key)
    plumbing = [dict((k, w[k]) for k in ("key", "ipv4", "ifname", "netns", "mac", "host_mac", "adopted")) for w in wants]
    return reconciled(bool(changes), sorted(before, key=_entry_sort_key), after, changes,
                      "endpoints (host-side interfaces with the palisade alias)", render=render_entry,
                      endpoints=plumbing)


def open_plumber(route_protocol=ROUTE_PROTOCOL):
    """A Plumber on pyroute2's IPRoute and netns (the module's entry point)."""
    return Plumber(IPRoute, pyroute2_netns, route_protocol)


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
