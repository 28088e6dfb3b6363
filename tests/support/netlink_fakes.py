# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A kernel without a kernel, for the routing unit tests.

Kernel state is fabricated as netlink-like dicts ({'family', 'dst_len', ...,
'attrs': [(name, value), ...]}), the shape pyroute2 messages have, and
``FakeBackend`` has the read/write methods of the routing package's
NetlinkBackend, keeps routes and rules as such messages and records every
write in order, so check mode and ordering can be asserted.
"""

import errno

from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import ROUTE_PROTOCOL
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import names as nm
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.errors import NetlinkFailure
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.routes import (
    RTNH_F_ONLINK,
    format_route,
    parse_route_msg,
    route_key,
)
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.rules import format_rule, parse_rule_msg

P = ROUTE_PROTOCOL
LINKS = {1: {"name": "lo", "up": True}, 2: {"name": "eth0", "up": True}, 3: {"name": "eth1", "up": False}}
IFNAMES = dict((i, v["name"]) for i, v in LINKS.items())
ADDRESSES = {"127.0.0.1", "192.0.2.11"}


def route_msg(dst, table=254, proto=P, gateway=None, oif=None, metric=None, scope=0, rtype=1, prefsrc=None, flags=0, tos=0,
              multipath=None):
    addr, dummy, plen = dst.partition("/")
    attrs = [("RTA_TABLE", table)]
    if int(plen or 32):
        attrs.append(("RTA_DST", addr))
    if metric is not None:
        attrs.append(("RTA_PRIORITY", metric))
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    if oif:
        attrs.append(("RTA_OIF", oif))
    if prefsrc:
        attrs.append(("RTA_PREFSRC", prefsrc))
    if multipath:
        attrs.append(("RTA_MULTIPATH", multipath))
    return {"family": 2, "dst_len": int(plen or 32), "src_len": 0, "tos": tos, "table": table if table < 256 else 252,
            "proto": proto, "scope": scope, "type": rtype, "flags": flags, "attrs": attrs}


def rule_msg(priority, table=None, proto=P, action=1, fwmark=None, fwmask=None, src=None, dst=None, iif=None, oif=None,
             flags=0, extra=()):
    attrs = []
    if table is not None:
        attrs.append(("FRA_TABLE", table))
    attrs.append(("FRA_SUPPRESS_PREFIXLEN", 0xFFFFFFFF))
    attrs.append(("FRA_PROTOCOL", proto))
    if iif:
        attrs.append(("FRA_IIFNAME", iif))
    if oif:
        attrs.append(("FRA_OIFNAME", oif))
    if priority:
        attrs.append(("FRA_PRIORITY", priority))
    if fwmark:
        attrs.append(("FRA_FWMARK", fwmark))
    if fwmask is not None:
        attrs.append(("FRA_FWMASK", fwmask))
    src_len = dst_len = 0
    if src:
        addr, dummy, plen = src.partition("/")
        attrs.append(("FRA_SRC", addr))
        src_len = int(plen)
    if dst:
        addr, dummy, plen = dst.partition("/")
        attrs.append(("FRA_DST", addr))
        dst_len = int(plen)
    attrs.extend(extra)
    return {"family": 2, "dst_len": dst_len, "src_len": src_len, "tos": 0,
            "table": (table if table is not None and table < 256 else (252 if table else 0)),
            "action": action, "flags": flags, "attrs": attrs}


def kernel_default_rules():
    return [rule_msg(0, table=255, proto=2), rule_msg(32766, table=254, proto=2), rule_msg(32767, table=253, proto=2)]


def parsed_routes(*msgs):
    return [parse_route_msg(m, IFNAMES) for m in msgs]


class FakeBackend(object):
    """A tiny kernel: routes/rules as netlink-like dicts, writes recorded in order."""

    def __init__(self, routes=(), rules=(), links=None, addresses=None):
        self.routes = list(routes)
        self.rules = list(rules)
        self.link_table = dict(LINKS if links is None else links)
        self.address_set = set(ADDRESSES if addresses is None else addresses)
        self.writes = []
        self.fail_on = {}  # (op, label) -> errno

    def links(self):
        return self.link_table

    def addresses(self):
        return self.address_set

    def dump_routes(self):
        return list(self.routes)

    def dump_rules(self):
        return list(self.rules)

    def _maybe_fail(self, op, label):
        code = self.fail_on.get((op, label))
        if code:
            raise NetlinkFailure(code, "fake failure")

    def _names(self):
        return dict((i, v["name"]) for i, v in self.link_table.items())

    def add_route(self, route, protocol, oif, replace=False):
        label = format_route(route)
        self.writes.append(("replace_route" if replace else "add_route", label))
        self._maybe_fail("add_route", label)
        msg = route_msg(route["dst"], table=route["table"], proto=protocol, gateway=route["gateway"],
                        oif=oif or (2 if route["gateway"] and not route["dev"] else None),
                        metric=route["metric"] or None, scope=nm.SCOPES[route["scope"]], rtype=nm.ROUTE_TYPES[route["type"]],
                        prefsrc=route["src"], flags=RTNH_F_ONLINK if route["onlink"] else 0)
        key = route_key(route)
        for index, old in enumerate(self.routes):
            if route_key(parse_route_msg(old, self._names())) == key:
                if replace:
                    self.routes[index] = msg
                    return
                raise NetlinkFailure(errno.EEXIST, "File exists")
        self.routes.append(msg)

    def delete_route(self, route, protocol, oif):
        label = format_route(route)
        self.writes.append(("delete_route", label))
        self._maybe_fail("delete_route", label)
        for index, old in enumerate(self.routes):
            parsed = parse_route_msg(old, self._names())
            wanted = dict(route, protocol=protocol)
            wanted.pop("delegated", None)  # the reader's mark, not a kernel attribute
            if parsed == wanted:
                del self.routes[index]
                return
        raise NetlinkFailure(errno.ESRCH, "No such process")

    def add_rule(self, rule, protocol):
        label = format_rule(rule)
        self.writes.append(("add_rule", label))
        self._maybe_fail("add_rule", label)
        self.rules.append(rule_msg(rule["priority"], table=rule["table"], proto=protocol, action=nm.RULE_ACTIONS[rule["action"]],
                                   fwmark=rule["fwmark"], fwmask=rule["fwmask"], src=rule["src"], dst=rule["dst"],
                                   iif=rule["iif"], oif=rule["oif"]))
        self.rules.sort(key=lambda m: parse_rule_msg(m)["priority"])  # stable: appended after equal priorities

    def delete_rule(self, rule, protocol):
        label = format_rule(rule)
        self.writes.append(("delete_rule", label))
        self._maybe_fail("delete_rule", label)
        for index, old in enumerate(self.rules):
            if parse_rule_msg(old) == dict(rule, protocol=protocol):
                del self.rules[index]
                return
        raise NetlinkFailure(errno.ENOENT, "No such file or directory")
