# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's routes and rules through rtnetlink (pyroute2).

The only module of the collection that builds route and rule requests: the
ip_route/ip_rule reconciler, the endpoint plumbing and the lab all write
routes through ``NetlinkBackend``. Requests are raw rtmsg/fibmsg so that
every field is the one the caller decided (pyroute2's IPRoute.route() would
default the protocol to 'static', the scope to universe, ...). Kernel
refusals come out as NetlinkFailure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_DELRULE, RTM_GETROUTE, RTM_GETRULE, RTM_NEWROUTE, RTM_NEWRULE
    from pyroute2.netlink.rtnl.fibmsg import fibmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # reported by the modules through missing_required_lib()
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

from ansible_collections.palisade.ebpf.plugins.module_utils._routing import names as nm
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import NetlinkFailure, RoutingError
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.family import IPV4
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.routes import RTNH_F_ONLINK, parse_route_msg
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.rules import FIB_RULE_INVERT, RULE_EXTRA_ATTRS

PYROUTE2_REQUIREMENT = "pyroute2 (Debian: python3-pyroute2)"
IFF_UP = 0x1


class NetlinkBackend(object):
    """Routes and rules of one address family in one network namespace.

    ``ipr`` is an open IPRoute socket (it stays bound to the namespace it was
    opened in); without one the backend opens, and closes, its own in the
    current namespace.
    """

    def __init__(self, ipr=None, family=IPV4):
        if not HAS_PYROUTE2:
            raise RoutingError("the %s Python library is required" % PYROUTE2_REQUIREMENT)
        self.family = family
        self._owns_socket = ipr is None
        self.ipr = IPRoute() if ipr is None else ipr

    def close(self):
        if self._owns_socket:
            self.ipr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _request(self, msg, msg_type, flags):
        try:
            return tuple(self.ipr.nlm_request(msg, msg_type=msg_type, msg_flags=flags))
        except NetlinkError as exc:
            raise NetlinkFailure(exc.code, os.strerror(exc.code) if exc.code else str(exc))

    # -- reads -----------------------------------------------------------

    def links(self):
        """{ifindex: {'name', 'up', 'alias'}}."""
        out = {}
        for link in self.ipr.get_links():
            out[link["index"]] = {"name": link.get_attr("IFLA_IFNAME"), "up": bool(link["flags"] & IFF_UP),
                                  "alias": link.get_attr("IFLA_IFALIAS")}
        return out

    def addresses(self):
        """This namespace's addresses of the family."""
        return set(a.get_attr("IFA_ADDRESS") for a in self.ipr.get_addr(family=self.family.number))

    def dump_routes(self):
        msg = rtmsg()
        msg["family"] = self.family.number
        return self._request(msg, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP)

    def dump_rules(self):
        msg = fibmsg()
        msg["family"] = self.family.number
        return self._request(msg, RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP)

    def routes(self, ifnames=None):
        """Every route of the family in normal form, in dump order; ``ifnames``
        ({ifindex: name}) saves reading the links again."""
        if ifnames is None:
            ifnames = dict((index, info["name"]) for index, info in self.links().items())
        parsed = (parse_route_msg(msg, ifnames, self.family) for msg in self.dump_routes())
        return [route for route in parsed if route is not None]

    # -- routes ----------------------------------------------------------

    def route_message(self, route, protocol, oif):
        """The rtmsg for one normalised route: every field set, none defaulted."""
        net = ipaddress.ip_network(route["dst"])
        msg = rtmsg()
        msg["family"] = self.family.number
        msg["dst_len"] = net.prefixlen
        msg["src_len"] = 0
        msg["tos"] = route.get("tos", 0)
        msg["table"] = route["table"] if route["table"] < 256 else nm.RT_TABLE_COMPAT
        msg["proto"] = protocol
        msg["scope"] = nm.SCOPES.get(route["scope"], 0)
        msg["type"] = nm.ROUTE_TYPES.get(route["type"], nm.route_type_code(route["type"]))
        msg["flags"] = RTNH_F_ONLINK if route.get("onlink") else 0
        attrs = [["RTA_TABLE", route["table"]], ["RTA_PRIORITY", route["metric"]]]
        if net.prefixlen:
            attrs.append(["RTA_DST", str(net.network_address)])
        if route.get("gateway"):
            attrs.append(["RTA_GATEWAY", route["gateway"]])
        if oif:
            attrs.append(["RTA_OIF", oif])
        if route.get("src"):
            attrs.append(["RTA_PREFSRC", route["src"]])
        msg["attrs"] = attrs
        return msg

    def add_route(self, route, protocol, oif, replace=False):
        """Add, or with ``replace`` rewrite the first route under its key in place."""
        # A plain add uses NLM_F_EXCL: if a route with this key appeared since
        # the dump (maybe not ours) the kernel refuses instead of shadowing it.
        flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL)
        self._request(self.route_message(route, protocol, oif), RTM_NEWROUTE, flags)

    def replace_route(self, route, protocol, oif):
        self.add_route(route, protocol, oif, replace=True)

    def delete_route(self, route, protocol, oif):
        # Everything known about the route is sent so that the kernel deletes
        # this one and not another under the same key; the protocol alone
        # already rules out entries that are not the caller's.
        self._request(self.route_message(route, protocol, oif), RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK)

    # -- rules -----------------------------------------------------------

    def rule_message(self, rule, protocol):
        msg = fibmsg()
        msg["family"] = self.family.number
        msg["tos"] = rule.get("tos", 0)
        msg["action"] = nm.RULE_ACTIONS.get(rule["action"], 0)
        msg["flags"] = FIB_RULE_INVERT if rule.get("invert") else 0
        table = rule.get("table") or 0
        msg["table"] = table if table < 256 else nm.RT_TABLE_COMPAT
        # FRA_PRIORITY always, even 0: without it the kernel picks a priority
        # on add and matches any priority on delete.
        attrs = [["FRA_PRIORITY", rule["priority"]], ["FRA_PROTOCOL", protocol]]
        if table:
            attrs.append(["FRA_TABLE", table])
        if rule.get("fwmark") is not None:
            attrs.append(["FRA_FWMARK", rule["fwmark"]])
            attrs.append(["FRA_FWMASK", rule["fwmask"] if rule.get("fwmask") is not None else nm.UINT32_MAX])
        for field, attr, length_key in (("src", "FRA_SRC", "src_len"), ("dst", "FRA_DST", "dst_len")):
            if rule.get(field):
                net = ipaddress.ip_network(rule[field])
                msg[length_key] = net.prefixlen
                attrs.append([attr, str(net.network_address)])
        if rule.get("iif"):
            attrs.append(["FRA_IIFNAME", rule["iif"]])
        if rule.get("oif"):
            attrs.append(["FRA_OIFNAME", rule["oif"]])
        # Unmanaged scalar attributes of a kernel rule being deleted: sending
        # them narrows the kernel's match to exactly that rule.
        extras = rule.get("extras") or {}
        for attr, key in RULE_EXTRA_ATTRS:
            if key in extras and not attr.endswith("_RANGE"):
                attrs.append([attr, extras[key]])
        msg["attrs"] = attrs
        return msg

    def add_rule(self, rule, protocol):
        self._request(self.rule_message(rule, protocol), RTM_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def delete_rule(self, rule, protocol):
        self._request(self.rule_message(rule, protocol), RTM_DELRULE, NLM_F_REQUEST | NLM_F_ACK)
