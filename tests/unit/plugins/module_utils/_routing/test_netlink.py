# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for _routing/netlink.py: request encoding (pyroute2 message objects, nothing sent)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.palisade.ebpf.plugins.module_utils._routing import netlink
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import routes as rt
from ansible_collections.palisade.ebpf.plugins.module_utils._routing import rules as ru
from tests.support.netlink_fakes import P, route_msg

needs_pyroute2 = pytest.mark.skipif(not netlink.HAS_PYROUTE2, reason="pyroute2 not installed")


class FakeSocket(object):
    """Stands in for an IPRoute socket: answers dumps with canned messages."""

    def __init__(self, messages=()):
        self.messages = list(messages)
        self.requests = []
        self.closed = False

    def nlm_request(self, msg, msg_type, msg_flags):
        self.requests.append((msg_type, msg))
        return iter(self.messages)

    def close(self):
        self.closed = True


def _attrs(msg):
    return dict((a[0], a[1]) for a in msg["attrs"])


@needs_pyroute2
def test_route_request_encoding():
    route = rt.normalize_route({"dst": "0.0.0.0/0", "type": "local", "dev": "lo", "table": 2004})
    msg = netlink.NetlinkBackend(FakeSocket()).route_message(route, P, 1)
    assert (msg["table"], msg["proto"], msg["type"], msg["scope"], msg["dst_len"]) == (252, P, 2, 254, 0)
    assert _attrs(msg) == {"RTA_TABLE": 2004, "RTA_PRIORITY": 0, "RTA_OIF": 1}
    route = rt.normalize_route({"dst": "10.1.3.0/24", "gateway": "192.0.2.13", "dev": "eth0", "onlink": True})
    msg = netlink.NetlinkBackend(FakeSocket()).route_message(route, P, 2)
    assert msg["flags"] == rt.RTNH_F_ONLINK and msg["table"] == 254
    assert _attrs(msg)["RTA_DST"] == "10.1.3.0" and _attrs(msg)["RTA_GATEWAY"] == "192.0.2.13"
    msg.encode()  # pyroute2 accepts every field


@needs_pyroute2
def test_rule_request_encoding():
    rule = ru.normalize_rule({"priority": 0, "table": 2004, "fwmark": "0x200/0xf00", "src": "10.1.0.0/16"})
    msg = netlink.NetlinkBackend(FakeSocket()).rule_message(rule, P)
    attrs = _attrs(msg)
    # FRA_PRIORITY is sent even for 0, so the kernel neither picks nor wildcards it.
    assert attrs["FRA_PRIORITY"] == 0 and attrs["FRA_PROTOCOL"] == P and attrs["FRA_TABLE"] == 2004
    assert (attrs["FRA_FWMARK"], attrs["FRA_FWMASK"], attrs["FRA_SRC"], msg["src_len"], msg["table"]) == (0x200, 0xF00, "10.1.0.0", 16, 252)
    msg.encode()


@needs_pyroute2
def test_routes_reads_one_family_in_normal_form_and_leaves_a_borrowed_socket_open():
    other_family = dict(route_msg("10.9.0.0/16", oif=2), family=10)
    sock = FakeSocket([route_msg("10.1.1.10/32", oif=7, scope=253), other_family])
    backend = netlink.NetlinkBackend(sock)
    routes = backend.routes({7: "lxc1234abcd"})
    assert [rt.format_route(r) for r in routes] == ["10.1.1.10/32 dev lxc1234abcd scope link table main"]
    assert sock.requests[0][1]["family"] == 2
    backend.close()
    assert sock.closed is False  # the caller's socket (an endpoint's or a lab namespace's) stays theirs
