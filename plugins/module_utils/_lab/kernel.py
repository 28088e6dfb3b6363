# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel side of the lab: network namespaces, links, addresses, routes, sysctls.

Observes the lab objects (see plan.py) that live in the kernel and applies
planned actions to them, with pyroute2 only; routes are read and written
through the routing package's netlink backend and named with its tables, like
every other route of the collection.  Everything here acts on objects
the lab owns by name (its namespaces, ``<prefix>-ctl``, the veths it made) and,
in the root namespace, on nothing but ``<prefix>-ctl`` and the routes over it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import socket
from contextlib import contextmanager

try:
    from pyroute2 import IPRoute
    from pyroute2 import netns as pr_netns
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # reported by the module with missing_required_lib
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

    class NetlinkError(Exception):
        code = 0

from ansible_collections.palisade.ebpf.plugins.module_utils._lab import plan as lab
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import names as route_names
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import NetlinkFailure
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.netlink import NetlinkBackend
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.routes import normalize_route

NETNS_RUN_DIR = "/run/netns"
IFF_UP = 0x1


def netns_path(name):
    return os.path.join(NETNS_RUN_DIR, name)


def _nsfs_dev():
    return os.stat("/proc/self/ns/net").st_dev


def netns_inode(name):
    """Inode of a named namespace, or None when it is not a mounted namespace.

    A file under /run/netns that is not an nsfs mount (left over by a crash
    between creating the mount point and bind-mounting it) counts as absent.
    """
    try:
        st = os.stat(netns_path(name))
    except OSError:
        return None
    if st.st_dev != _nsfs_dev():
        return None
    return st.st_ino


class Kernel(object):
    """Netlink sockets per namespace, opened by entering it briefly.

    A netlink socket stays bound to the namespace it was created in, so the
    module enters a namespace (setns on an fd, never creating it: pyroute2's
    own pushns/setns would create a missing one), opens the socket and comes
    straight back.  Sockets pin their namespace, so ``forget`` must run before
    a namespace is deleted.
    """

    def __init__(self):
        self._home = os.open("/proc/self/ns/net", os.O_RDONLY)
        self._sockets = {}

    @contextmanager
    def inside(self, name):
        if not name:
            yield
            return
        fd = os.open(netns_path(name), os.O_RDONLY)
        try:
            pr_netns.setns(fd)
            try:
                yield
            finally:
                pr_netns.setns(self._home)
        finally:
            os.close(fd)

    def ipr(self, name):
        sock = self._sockets.get(name)
        if sock is None:
            with self.inside(name):
                sock = IPRoute()
            self._sockets[name] = sock
        return sock

    def routing(self, name):
        """The routing backend on the namespace's socket (which stays the Kernel's)."""
        return NetlinkBackend(self.ipr(name))

    def forget(self, name):
        sock = self._sockets.pop(name, None)
        if sock is not None:
            sock.close()

    def close(self):
        for name in list(self._sockets):
            self.forget(name)
        if self._home is not None:
            os.close(self._home)
            self._home = None

    # -- reading ---------------------------------------------------------------------
    def links(self, name):
        """{ifname: {index, kind, up, master, peer}} of a namespace."""
        result = {}
        for msg in self.ipr(name).get_links():
            info = msg.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            result[msg.get_attr("IFLA_IFNAME")] = {
                "index": msg["index"],
                "kind": kind,
                "up": bool(msg["flags"] & IFF_UP),
                "master": msg.get_attr("IFLA_MASTER"),
                "peer": msg.get_attr("IFLA_LINK"),
            }
        return result

    def sysctl_path(self, key):
        # A tuple keeps dots inside components (interface names may have them).
        parts = key if isinstance(key, tuple) else key.split(".")
        return "/proc/sys/" + "/".join(parts)

    def read_sysctl(self, name, key):
        # /proc/sys/net resolves against the namespace of the task that opens it.
        with self.inside(name):
            with open(self.sysctl_path(key)) as handle:
                return handle.read().strip()

    def ipv6_enabled(self, name, ifname):
        """False when IPv6 is disabled on the interface (or in the kernel)."""
        try:
            return self.read_sysctl(name, ("net", "ipv6", "conf", ifname, "disable_ipv6")) != "1"
        except (IOError, OSError):
            return False

    def write_sysctl(self, name, key, value):
        with self.inside(name):
            with open(self.sysctl_path(key), "w") as handle:
                handle.write(str(value))


def _by_index(links):
    return dict((v["index"], k) for k, v in links.items())


def _observe_veth(kernel, ns, ifname, links, fabric, fabric_links, peer_name):
    """A veth of the lab as seen from both ends, or None when it is missing."""
    here = links.get(ifname)
    if here is None:
        return None
    if here["kind"] != "veth":
        attrs = {"peer": "(a %s, not a veth)" % (here["kind"] or "device"), "master": "", "up": here["up"]}
        if not ns:
            attrs["ipv6"] = kernel.ipv6_enabled(ns, ifname)
        return lab.LabObject("veth", (ns, ifname), attrs)
    there = fabric_links.get(peer_name) if fabric_links is not None else None
    paired = (
        there is not None and there["kind"] == "veth"
        and here["peer"] == there["index"] and there["peer"] == here["index"]
    )
    if not paired:
        attrs = {"peer": "(unpaired)", "master": "", "up": here["up"]}
        if not ns:
            attrs["ipv6"] = kernel.ipv6_enabled(ns, ifname)
        return lab.LabObject("veth", (ns, ifname), attrs)
    master = _by_index(fabric_links).get(there["master"], "") if there["master"] else ""
    attrs = {"peer": "%s/%s" % (fabric, peer_name), "master": master, "up": here["up"] and there["up"]}
    if not ns:
        attrs["ipv6"] = kernel.ipv6_enabled(ns, ifname)
    return lab.LabObject("veth", (ns, ifname), attrs)


def _observe_addresses(kernel, ns, ifname, index):
    objs = []
    for msg in kernel.ipr(ns).get_addr(family=socket.AF_INET, index=index):
        cidr = "%s/%d" % (msg.get_attr("IFA_ADDRESS"), msg["prefixlen"])
        objs.append(lab.LabObject("address", (ns, ifname, cidr)))
    return objs


def _observe_routes(kernel, ns, links, own_dev, wanted, owned_proto):
    """/32 routes of the main table the lab owns or wants in ``ns``.

    Owned: over ``own_dev`` (and, when ``owned_proto`` is set, with that
    protocol).  A route to a wanted destination that is not owned is reported
    as foreign, so planning stops instead of overwriting someone's route.
    Routes with a metric do not collide with the lab's (metric 0) and are
    ignored.
    """
    objs = []
    for route in kernel.routing(ns).routes(_by_index(links)):
        if not route["dst"].endswith("/32") or route["table"] != route_names.MAIN_TABLE or route["metric"]:
            continue
        dst = route["dst"]
        owned = route["dev"] is not None and route["dev"] == own_dev and (
            owned_proto is None or route["protocol"] == owned_proto)
        if not owned and dst not in wanted:
            continue
        attrs = {
            "dev": route["dev"] or "(multipath)",
            "scope": route["scope"],
            "proto": route_names.protocol_name(route["protocol"]),
        }
        if route["src"]:
            attrs["src"] = route["src"]
        # The route as the kernel has it: a delete sends exactly this.
        meta = {"route": route}
        if not owned:
            meta["foreign"] = (
                "a route to %s already exists in the %s namespace (dev %s, proto %s) and is not the lab's; "
                "another lab or the host uses this node address: remove it or choose other node addresses"
                % (dst, ns or "root", attrs["dev"], attrs["proto"])
            )
        objs.append(lab.LabObject("route", (ns, dst), attrs, meta))
    return objs


def observe(kernel, spec, record):
    """Lab objects that live in the kernel, as they are now."""
    objs = []
    roles = spec.netns_roles()
    recorded = record.get("netns", {})
    for name in sorted(set(roles) | set(recorded)):
        if netns_inode(name) is None:
            continue
        if name in roles:
            role, derived = roles[name]
        else:
            role, derived = recorded[name].get("role", "stale"), False
        created = recorded[name].get("created", derived) if name in recorded else derived
        objs.append(lab.LabObject("netns", name, {"role": role}, {"keep": not created}))

    fabric_links = None
    if netns_inode(spec.fabric) is not None:
        fabric_links = kernel.links(spec.fabric)
        br = fabric_links.get(lab.BRIDGE_IFNAME)
        if br is not None:
            attrs = {"up": br["up"]}
            if br["kind"] != "bridge":
                attrs["kind"] = br["kind"] or "device"
            objs.append(lab.LabObject("bridge", (spec.fabric, lab.BRIDGE_IFNAME), attrs))

    node_routes = set("%s/32" % h.ipv4 for h in spec.hosts)

    # Root namespace: only <prefix>-ctl, its address and the routes over it.
    root_links = kernel.links("")
    ctl = root_links.get(spec.ctl)
    if ctl is not None:
        veth = _observe_veth(kernel, "", spec.ctl, root_links, spec.fabric, fabric_links, lab.CTL_FABRIC_IFNAME)
        if ctl["kind"] != "veth":
            veth.meta["foreign"] = (
                "interface %s exists in the root namespace but is a %s, not the lab's veth; "
                "the lab will not touch it: remove it or choose another lab prefix" % (spec.ctl, ctl["kind"] or "device")
            )
        objs.append(veth)
        if ctl["kind"] == "veth":
            objs.extend(_observe_addresses(kernel, "", spec.ctl, ctl["index"]))
    objs.extend(_observe_routes(kernel, "", root_links, spec.ctl, node_routes, None))

    for host in spec.hosts:
        if netns_inode(host.netns) is None:
            continue
        links = kernel.links(host.netns)
        lo = links.get("lo")
        objs.append(lab.LabObject("link", (host.netns, "lo"), {"up": bool(lo and lo["up"])}))
        veth = _observe_veth(kernel, host.netns, lab.HOST_IFNAME, links, spec.fabric, fabric_links, host.port_ifname)
        if veth is not None:
            objs.append(veth)
            objs.extend(_observe_addresses(kernel, host.netns, lab.HOST_IFNAME, links[lab.HOST_IFNAME]["index"]))
        wanted = set(["%s/32" % lab.CONTROLLER_ADDRESS]) | (node_routes - set(["%s/32" % host.ipv4]))
        objs.extend(_observe_routes(kernel, host.netns, links, lab.HOST_IFNAME, wanted,
                                    route_names.protocol_number(lab.UNDERLAY_ROUTE_PROTO)))
        objs.append(lab.LabObject("sysctl", (host.netns, lab.FORWARDING_SYSCTL), {
            "value": kernel.read_sysctl(host.netns, lab.FORWARDING_SYSCTL)}))

    for ep in spec.endpoints:
        if netns_inode(ep.netns) is None:
            continue
        lo = kernel.links(ep.netns).get("lo")
        objs.append(lab.LabObject("link", (ep.netns, "lo"), {"up": bool(lo and lo["up"])}))
    return objs


# --- applying -------------------------------------------------------------------------------

def _ignore(codes, func, *args, **kwargs):
    """Run a netlink call, treating the given errnos as "already so"."""
    try:
        return func(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code in codes:
            return None
        raise


def _index(kernel, ns, ifname):
    found = kernel.ipr(ns).link_lookup(ifname=ifname)
    return found[0] if found else None


def _set_up(kernel, ns, ifname):
    kernel.ipr(ns).link("set", index=_index(kernel, ns, ifname), state="up")


def _delete_link(kernel, ns, ifname):
    index = _index(kernel, ns, ifname)
    if index is not None:
        _ignore((errno.ENODEV,), kernel.ipr(ns).link, "del", index=index)


def _create_netns(kernel, name):
    path = netns_path(name)
    if os.path.lexists(path) and netns_inode(name) is None:
        # A mount point without a mounted namespace (an interrupted create):
        # nothing refers to it, so it can go.
        os.unlink(path)
    if netns_inode(name) is None:
        pr_netns.create(name)
    kernel.forget(name)


def _delete_netns(kernel, name):
    # Our socket inside would keep the namespace (and its veths) alive.
    kernel.forget(name)
    if os.path.lexists(netns_path(name)):
        pr_netns.remove(name)


def _ensure_veth(kernel, action):
    obj = action.obj
    ns, ifname = obj.ident
    fabric, peer = obj.attrs["peer"].split("/", 1)
    if action.op in ("create", "replace"):
        # Clear both names first: a half of an old pair in our namespaces
        # would make the create fail.
        _delete_link(kernel, ns, ifname)
        _delete_link(kernel, fabric, peer)
        # The peer is created directly inside the fabric, so no temporary
        # name ever appears in the root namespace.
        kernel.ipr(ns).link("add", ifname=ifname, kind="veth",
                            peer={"ifname": peer, "net_ns_fd": fabric})
    master = _index(kernel, fabric, obj.attrs["master"])
    kernel.ipr(fabric).link("set", index=_index(kernel, fabric, peer), master=master, state="up")
    if obj.attrs.get("ipv6") is False and kernel.ipv6_enabled(ns, ifname):
        # Before the link goes up, so no link-local address or route appears.
        kernel.write_sysctl(ns, ("net", "ipv6", "conf", ifname, "disable_ipv6"), "1")
    _set_up(kernel, ns, ifname)


def _apply_route(kernel, action):
    """Write or delete one underlay route through the routing backend."""
    obj = action.obj
    ns, dst = obj.ident
    backend = kernel.routing(ns)
    try:
        if action.op == "delete":
            route = obj.meta["route"]
            oif = _index(kernel, ns, route["dev"]) if route["dev"] else None
            if oif is not None:
                try:
                    backend.delete_route(route, route["protocol"], oif)
                except NetlinkFailure as exc:
                    if exc.code not in (errno.ESRCH, errno.ENODEV):
                        raise
            return
        spec = {"dst": dst, "dev": obj.attrs["dev"], "scope": obj.attrs["scope"], "src": obj.attrs.get("src")}
        route = normalize_route(spec, where="lab route %s" % dst)
        backend.replace_route(route, route_names.protocol_number(obj.attrs["proto"]), _index(kernel, ns, obj.attrs["dev"]))
    except NetlinkFailure as exc:
        # Reported like every other netlink refusal of the lab.
        raise NetlinkError(exc.code, exc.message)


def apply(kernel, action):
    """Carry out one planned action on a kernel object."""
    obj, op = action.obj, action.op
    kind = obj.kind
    if kind == "netns":
        if op == "delete":
            _delete_netns(kernel, obj.ident[0])
        else:
            _create_netns(kernel, obj.ident[0])
    elif kind == "bridge":
        ns, ifname = obj.ident
        if op == "delete":
            _delete_link(kernel, ns, ifname)
            return
        if op == "replace":
            _delete_link(kernel, ns, ifname)
        if _index(kernel, ns, ifname) is None:
            kernel.ipr(ns).link("add", ifname=ifname, kind="bridge")
        _set_up(kernel, ns, ifname)
    elif kind == "link":
        _set_up(kernel, obj.ident[0], obj.ident[1])
    elif kind == "veth":
        if op == "delete":
            _delete_link(kernel, obj.ident[0], obj.ident[1])
        else:
            _ensure_veth(kernel, action)
    elif kind == "address":
        ns, ifname, cidr = obj.ident
        index = _index(kernel, ns, ifname)
        addr, plen = cidr.split("/")
        if op == "delete":
            if index is not None:
                _ignore((errno.EADDRNOTAVAIL, errno.ENODEV), kernel.ipr(ns).addr,
                        "del", index=index, address=addr, prefixlen=int(plen))
        else:
            _ignore((errno.EEXIST,), kernel.ipr(ns).addr, "add", index=index, address=addr, prefixlen=int(plen))
    elif kind == "route":
        _apply_route(kernel, action)
    elif kind == "sysctl":
        kernel.write_sysctl(obj.ident[0], obj.ident[1], obj.attrs["value"])
    else:
        raise ValueError("not a kernel object: %s" % kind)
