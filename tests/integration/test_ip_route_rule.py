# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""palisade.ebpf.ip_route / ip_rule against the real kernel (root).

Each test gets its own scratch network namespace (``paltest-rt-<pid>-<n>``)
with a veth pair, and runs the modules the way Ansible does: the venv's
``ansible`` ad-hoc command, local connection, /usr/bin/python3 on the
"target", the whole process inside the namespace through ``nsenter --net``.
The kernel is read back with pyroute2 inside the namespace, independently of
the module's own parsing. The root namespace's routes and rules are never
touched: every command runs in the scratch namespace, which is checked to be
another namespace than ours before anything runs in it, and deleted by name
afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import itertools
import json
import os
import shutil

import pytest

from tests.support import kernel
from tests.support.kernel import TARGET_PYTHON, target_has

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(ROOT, ".venv", "bin", "ansible")
PROTO = 201
RT_PROTO_STATIC = 4

_counter = itertools.count()


pytestmark = [
    pytest.mark.skipif(not os.path.exists(ANSIBLE), reason="%s missing (make setup)" % ANSIBLE),
    pytest.mark.skipif(shutil.which("nsenter") is None or shutil.which("ip") is None, reason="needs nsenter and iproute2"),
    pytest.mark.skipif(not target_has("pyroute2"), reason="%s cannot import pyroute2 (apt install python3-pyroute2)" % TARGET_PYTHON),
]


class Netns(kernel.Netns):
    """A scratch network namespace: lo up, eth0 (192.0.2.11/24) <-> peer0 (no address), both up.

    Gateways are addresses of 192.0.2.0/24 that no interface here owns, so the
    kernel resolves them through eth0's connected route (nothing needs to
    answer: routes do not wait for neighbours).
    """

    def __init__(self):
        super().__init__("paltest-rt-%d-%d" % (os.getpid(), next(_counter)))

    def create(self):
        super().create()
        self.ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
        self.ip("addr", "add", "192.0.2.11/24", "dev", "eth0")
        self.ip("link", "set", "eth0", "up")
        self.ip("link", "set", "peer0", "up")
        return self

    def kernel(self):
        """Routes and rules as pyroute2 sees them inside the namespace."""
        return json.loads(self.sh(TARGET_PYTHON, "-c", _READER))

    def routes(self, proto=None):
        routes = self.kernel()["routes"]
        return [r for r in routes if proto is None or r["proto"] == proto]

    def rules(self, proto=None):
        rules = self.kernel()["rules"]
        return [r for r in rules if proto is None or r["proto"] == proto]

    def run(self, module, args, check=False, diff=False):
        """Run palisade.ebpf.<module> with ansible ad-hoc inside the namespace -> (rc, result, output)."""
        return self.module(module, args, check=check, diff=diff)


_READER = r"""
import json, socket
from pyroute2 import IPRoute
ipr = IPRoute()
names = dict((l["index"], l.get_attr("IFLA_IFNAME")) for l in ipr.get_links())
routes, rules = [], []
for r in ipr.get_routes(family=socket.AF_INET):
    routes.append({
        "dst": "%s/%d" % (r.get_attr("RTA_DST") or "0.0.0.0", r["dst_len"]),
        "table": r.get_attr("RTA_TABLE"), "proto": r["proto"], "type": r["type"], "scope": r["scope"],
        "gateway": r.get_attr("RTA_GATEWAY"), "dev": names.get(r.get_attr("RTA_OIF")),
        "metric": r.get_attr("RTA_PRIORITY") or 0, "onlink": bool(r["flags"] & 4)})
for r in ipr.get_rules(family=socket.AF_INET):
    rules.append({
        "priority": r.get_attr("FRA_PRIORITY") or 0, "table": r.get_attr("FRA_TABLE"),
        "proto": r.get_attr("FRA_PROTOCOL"), "action": r["action"], "fwmark": r.get_attr("FRA_FWMARK"),
        "fwmask": r.get_attr("FRA_FWMASK"), "src": r.get_attr("FRA_SRC"), "src_len": r["src_len"],
        "iif": r.get_attr("FRA_IIFNAME")})
print(json.dumps({"routes": routes, "rules": rules}))
"""


@pytest.fixture
def netns(netns_factory):
    return netns_factory(Netns())


def route_set(routes):
    return sorted((r["table"], r["dst"], r["metric"], r["gateway"], r["dev"], r["type"], r["onlink"]) for r in routes)


# ---------------------------------------------------------------------------
# ip_route
# ---------------------------------------------------------------------------

LINK_ROUTE = {"dst": "192.0.2.12", "dev": "eth0"}
POD_ROUTE = {"dst": "10.1.2.0/24", "gateway": "192.0.2.12", "dev": "eth0"}
POD_ROUTE_2 = {"dst": "10.1.3.0/24", "gateway": "192.0.2.12"}  # no dev: the kernel picks eth0


def test_route_lifecycle(netns):
    # An administrator's route in the same table: it must survive everything below.
    netns.ip("route", "add", "10.5.0.0/16", "via", "192.0.2.1", "dev", "eth0", "proto", "static")
    admin = [r for r in netns.routes() if r["dst"] == "10.5.0.0/16"]
    assert len(admin) == 1 and admin[0]["proto"] == RT_PROTO_STATIC
    args = {"routes": [POD_ROUTE, LINK_ROUTE, POD_ROUTE_2], "purge": True}

    # Check mode: full prediction, no write.
    before = netns.kernel()
    rc, result, output = netns.run("ip_route", args, check=True, diff=True)
    assert rc == 0 and result["changed"] is True
    assert result["changes"] == ["+ 192.0.2.12/32 dev eth0 scope link table main",
                                 "+ 10.1.2.0/24 via 192.0.2.12 dev eth0 table main",
                                 "+ 10.1.3.0/24 via 192.0.2.12 table main"]
    assert "+10.1.2.0/24 via 192.0.2.12 dev eth0 table main" in output
    # --diff also shows the writes themselves (the 'prepared' text).
    assert "\n+ 10.1.3.0/24 via 192.0.2.12 table main\n" in output
    assert result["before"] == [] and [r["dst"] for r in result["after"]] == ["10.1.2.0/24", "10.1.3.0/24", "192.0.2.12/32"]
    assert netns.kernel() == before

    # Apply.
    rc, result, output = netns.run("ip_route", args)
    assert rc == 0 and result["changed"] is True, output
    assert result["changes"] == ["+ 192.0.2.12/32 dev eth0 scope link table main",
                                 "+ 10.1.2.0/24 via 192.0.2.12 dev eth0 table main",
                                 "+ 10.1.3.0/24 via 192.0.2.12 table main"]
    # 'after' is read back from the kernel: the route without dev got the kernel's choice.
    assert {"dst": "10.1.3.0/24", "gateway": "192.0.2.12", "dev": "eth0", "table": "main", "type": "unicast",
            "scope": "universe", "metric": 0, "onlink": False} in result["after"]
    assert route_set(netns.routes(PROTO)) == [
        (254, "10.1.2.0/24", 0, "192.0.2.12", "eth0", 1, False),
        (254, "10.1.3.0/24", 0, "192.0.2.12", "eth0", 1, False),
        (254, "192.0.2.12/32", 0, None, "eth0", 1, False),
    ]

    # Second run: nothing to do.
    rc, result, output = netns.run("ip_route", args)
    assert rc == 0 and result["changed"] is False, output
    assert result["changes"] == [] and result["before"] == result["after"]

    # state=gathered: the owned routes as the module takes them, nothing written.
    kernel = netns.kernel()
    rc, result, output = netns.run("ip_route", {"state": "gathered"})
    assert rc == 0 and result["changed"] is False, output
    assert [(r["dst"], r.get("gateway"), r["dev"], r["table"]) for r in result["gathered"]] == [
        ("10.1.2.0/24", "192.0.2.12", "eth0", "main"),
        ("10.1.3.0/24", "192.0.2.12", "eth0", "main"),
        ("192.0.2.12/32", None, "eth0", "main"),
    ]
    assert "10.5.0.0/16" not in output  # the administrator's route is not ours
    assert netns.kernel() == kernel
    # Fed back as the wanted routes, what was gathered is already in place.
    rc, again, output = netns.run("ip_route", {"routes": result["gathered"], "purge": True})
    assert rc == 0 and again["changed"] is False, output

    # Change the gateway of one route: replaced in place, shown in the diff.
    moved = dict(POD_ROUTE, gateway="192.0.2.13", onlink=True)
    args = {"routes": [moved, LINK_ROUTE, POD_ROUTE_2], "purge": True}
    rc, result, output = netns.run("ip_route", args, diff=True)
    assert rc == 0 and result["changed"] is True, output
    assert result["changes"] == ["~ 10.1.2.0/24 via 192.0.2.13 dev eth0 onlink table main"]
    assert "--- before: owned routes (protocol 201) in table main" in output
    assert "-10.1.2.0/24 via 192.0.2.12 dev eth0 table main" in output
    assert "+10.1.2.0/24 via 192.0.2.13 dev eth0 onlink table main" in output
    assert "\n~ 10.1.2.0/24 via 192.0.2.13 dev eth0 onlink table main\n" in output  # the write, in --diff
    pod = [r for r in netns.routes(PROTO) if r["dst"] == "10.1.2.0/24"]
    assert len(pod) == 1 and pod[0]["gateway"] == "192.0.2.13" and pod[0]["onlink"] is True

    # Purge: drop a route from the list; only it goes, the administrator's stays.
    args = {"routes": [moved, LINK_ROUTE], "purge": True}
    rc, result, output = netns.run("ip_route", args)
    assert rc == 0 and result["changed"] is True, output
    assert result["changes"] == ["- 10.1.3.0/24 via 192.0.2.12 dev eth0 table main"]
    assert [r["dst"] for r in netns.routes(PROTO) if r["dst"] == "10.1.3.0/24"] == []
    assert [r for r in netns.routes() if r["dst"] == "10.5.0.0/16"] == admin
    # The kernel's own connected route is not ours either.
    assert any(r["dst"] == "192.0.2.0/24" and r["proto"] == 2 for r in netns.routes())

    # Drift: an operator deletes one of our routes by hand; the next run restores it.
    netns.ip("route", "del", "10.1.2.0/24")
    rc, result, output = netns.run("ip_route", args)
    assert rc == 0 and result["changed"] is True, output
    assert result["changes"] == ["+ 10.1.2.0/24 via 192.0.2.13 dev eth0 onlink table main"]
    assert len([r for r in netns.routes(PROTO) if r["dst"] == "10.1.2.0/24"]) == 1

    # state=absent removes ours only.
    rc, result, output = netns.run("ip_route", {"routes": [{"dst": "10.1.2.0/24"}, {"dst": "10.5.0.0/16"}], "state": "absent"})
    assert rc == 0 and result["changed"] is True, output
    assert result["changes"] == ["- 10.1.2.0/24 via 192.0.2.13 dev eth0 onlink table main"]
    assert "left 10.5.0.0/16 via 192.0.2.1 dev eth0 table main alone" in output  # warning
    assert [r for r in netns.routes() if r["dst"] == "10.5.0.0/16"] == admin


def test_route_foreign_same_key_fails_without_changes(netns):
    netns.ip("route", "add", "10.1.2.0/24", "via", "192.0.2.99", "dev", "eth0", "proto", "static")
    before = netns.kernel()
    rc, result, output = netns.run("ip_route", {"routes": [LINK_ROUTE, POD_ROUTE]})
    assert rc != 0 and result.get("failed") is True
    assert "10.1.2.0/24 via 192.0.2.99 dev eth0 table main with protocol static (4)" in result["msg"]
    assert "refusing to overwrite" in result["msg"]
    # Validation happens before the first write: the link route was not added either.
    assert netns.kernel() == before
    # Another metric is another route and coexists with the administrator's.
    rc, result, output = netns.run("ip_route", {"routes": [LINK_ROUTE, dict(POD_ROUTE, metric=100)]})
    assert rc == 0 and result["changed"] is True, output
    assert "+ 10.1.2.0/24 via 192.0.2.12 dev eth0 metric 100 table main" in result["changes"]


def test_route_missing_dev_fails_without_changes(netns):
    before = netns.kernel()
    rc, result, output = netns.run("ip_route", {"routes": [LINK_ROUTE, {"dst": "10.1.4.0/24", "dev": "nosuch0"}]})
    assert rc != 0 and result.get("failed") is True
    assert "interface nosuch0 does not exist" in result["msg"] and "nothing was changed" in result["msg"]
    assert netns.kernel() == before
    # Check mode reports the same error.
    rc, result, output = netns.run("ip_route", {"routes": [{"dst": "10.1.4.0/24", "dev": "nosuch0"}]}, check=True)
    assert rc != 0 and "nosuch0 does not exist" in result["msg"]


def test_route_unreachable_gateway_explains(netns):
    rc, result, output = netns.run("ip_route", {"routes": [LINK_ROUTE, {"dst": "10.1.6.0/24", "gateway": "198.51.100.1", "dev": "eth0"}]})
    assert rc != 0
    assert "failed to add route 10.1.6.0/24 via 198.51.100.1 dev eth0 table main" in result["msg"]
    assert "Already applied: added 192.0.2.12/32 dev eth0 scope link table main" in result["msg"]


def test_route_local_table_and_purge_by_table(netns):
    local = {"dst": "0.0.0.0/0", "type": "local", "dev": "lo", "table": 2004}
    rc, result, output = netns.run("ip_route", {"routes": [local]})
    assert rc == 0 and result["changes"] == ["+ local default dev lo scope host table 2004"], output
    assert route_set(netns.routes(PROTO)) == [(2004, "0.0.0.0/0", 0, None, "lo", 2, False)]
    rc, result, output = netns.run("ip_route", {"routes": [local]})
    assert rc == 0 and result["changed"] is False, output
    # An empty list with purge and an explicit table empties that table of owned routes.
    rc, result, output = netns.run("ip_route", {"routes": [], "purge": True, "tables": [2004]}, diff=True)
    assert rc == 0 and result["changes"] == ["- local default dev lo scope host table 2004"], output
    assert "-local default dev lo scope host table 2004" in output
    assert netns.routes(PROTO) == []


# ---------------------------------------------------------------------------
# ip_rule
# ---------------------------------------------------------------------------

MARK_RULE = {"priority": 9, "fwmark": "0x200", "fwmask": "0xf00", "table": 2004}
SRC_RULE = {"priority": 110, "src": "10.1.1.0/24", "iif": "eth0", "table": "main"}


def rule_set(rules):
    return sorted((r["priority"], r["table"], r["fwmark"], r["fwmask"], r["src"], r["src_len"], r["iif"]) for r in rules)


def test_rule_lifecycle(netns):
    netns.ip("rule", "add", "priority", "50", "from", "10.9.0.0/16", "lookup", "100", "proto", "static")
    admin = [r for r in netns.rules() if r["priority"] == 50]
    assert len(admin) == 1
    defaults = [r for r in netns.rules() if r["priority"] in (0, 32766, 32767)]
    assert len(defaults) == 3
    args = {"rules": [MARK_RULE, SRC_RULE], "purge": True}

    before = netns.kernel()
    rc, result, output = netns.run("ip_rule", args, check=True, diff=True)
    assert rc == 0 and result["changed"] is True, output
    assert result["changes"] == ["+ 9: from all fwmark 0x200/0xf00 lookup 2004", "+ 110: from 10.1.1.0/24 iif eth0 lookup main"]
    assert "+9: from all fwmark 0x200/0xf00 lookup 2004" in output
    assert "\n+ 110: from 10.1.1.0/24 iif eth0 lookup main\n" in output  # the write, in --diff
    assert netns.kernel() == before

    rc, result, output = netns.run("ip_rule", args)
    assert rc == 0 and result["changed"] is True, output
    assert result["changes"] == ["+ 9: from all fwmark 0x200/0xf00 lookup 2004", "+ 110: from 10.1.1.0/24 iif eth0 lookup main"]
    assert rule_set(netns.rules(PROTO)) == [(9, 2004, 0x200, 0xF00, None, 0, None), (110, 254, None, None, "10.1.1.0", 24, "eth0")]

    rc, result, output = netns.run("ip_rule", args)
    assert rc == 0 and result["changed"] is False, output

    # state=gathered: the owned rules only, as the module takes them.
    kernel = netns.kernel()
    rc, result, output = netns.run("ip_rule", {"state": "gathered"})
    assert rc == 0 and result["changed"] is False, output
    assert result["gathered"] == [
        {"priority": 9, "action": "to_tbl", "table": 2004, "fwmark": "0x200", "fwmask": "0xf00"},
        {"priority": 110, "action": "to_tbl", "table": "main", "src": "10.1.1.0/24", "iif": "eth0"},
    ]
    assert netns.kernel() == kernel

    # Change the table of the mark rule: make-before-break replace.
    args = {"rules": [dict(MARK_RULE, table=2005), SRC_RULE], "purge": True}
    rc, result, output = netns.run("ip_rule", args, diff=True)
    # Make before break: the new rule is added, the old one removed afterwards.
    assert rc == 0 and result["changes"] == ["+ 9: from all fwmark 0x200/0xf00 lookup 2005",
                                             "- 9: from all fwmark 0x200/0xf00 lookup 2004"], output
    assert "-9: from all fwmark 0x200/0xf00 lookup 2004" in output
    assert "+9: from all fwmark 0x200/0xf00 lookup 2005" in output
    assert [(r["priority"], r["table"]) for r in netns.rules(PROTO) if r["priority"] == 9] == [(9, 2005)]

    # Purge: only the unlisted owned rule goes; the administrator's and the kernel's stay.
    args = {"rules": [dict(MARK_RULE, table=2005)], "purge": True}
    rc, result, output = netns.run("ip_rule", args)
    assert rc == 0 and result["changes"] == ["- 110: from 10.1.1.0/24 iif eth0 lookup main"], output
    assert [r["priority"] for r in netns.rules(PROTO)] == [9]
    assert [r for r in netns.rules() if r["priority"] == 50] == admin
    assert [r for r in netns.rules() if r["priority"] in (0, 32766, 32767)] == defaults

    # Drift: deleted by hand, restored by the next run.
    netns.ip("rule", "del", "priority", "9")
    rc, result, output = netns.run("ip_rule", args)
    assert rc == 0 and result["changes"] == ["+ 9: from all fwmark 0x200/0xf00 lookup 2005"], output
    assert [r["priority"] for r in netns.rules(PROTO)] == [9]

    # state=absent.
    rc, result, output = netns.run("ip_rule", {"rules": [{"priority": 9}, {"priority": 50}], "state": "absent"})
    assert rc == 0 and result["changes"] == ["- 9: from all fwmark 0x200/0xf00 lookup 2005"], output
    assert "left rule '50: from 10.9.0.0/16 lookup 100' alone" in output
    assert netns.rules(PROTO) == []
    assert [r for r in netns.rules() if r["priority"] == 50] == admin


def test_rule_foreign_priority_fails_without_changes(netns):
    netns.ip("rule", "add", "priority", "50", "from", "10.9.0.0/16", "lookup", "100", "proto", "static")
    before = netns.kernel()
    rc, result, output = netns.run("ip_rule", {"rules": [MARK_RULE, {"priority": 50, "table": 2004}]})
    assert rc != 0 and result.get("failed") is True
    assert "priority 50" in result["msg"] and "'50: from 10.9.0.0/16 lookup 100' with protocol static (4)" in result["msg"]
    # The kernel's default rules count as foreign too.
    rc, result, output = netns.run("ip_rule", {"rules": [{"priority": 32766, "table": 2004}]})
    assert rc != 0 and "'32766: from all lookup main' with protocol kernel (2)" in result["msg"]
    assert netns.kernel() == before
