#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ip_route
short_description: Declarative IPv4 routes, reconciled through netlink
version_added: 0.1.0
description:
  - Makes the IPv4 routes listed in O(routes) exist (or not exist) in the
    kernel of the managed host, in its current network namespace, through
    rtnetlink (pyroute2); it never runs C(ip).
  - A route is identified by its table, destination prefix and metric, as in
    the kernel. A listed route whose identity exists with other attributes
    (gateway, dev, scope, type, src, onlink) is replaced in place with one
    netlink request, so traffic always has a route.
  - Routes this collection creates carry the routing protocol O(protocol).
    Only routes with that protocol are ever replaced or removed. A route of
    another protocol with a wanted identity fails the task, naming the route
    and its protocol; it is never overwritten.
  - Everything is validated (options, interfaces, source addresses, conflicts)
    before the first write. New and changed routes are installed before any
    route is removed.
author:
  - palisade.ebpf developers (@palisade-ebpf)
requirements:
  - pyroute2 (Debian package C(python3-pyroute2)) on the managed host
extends_documentation_fragment:
  - palisade.ebpf.attributes
options:
  routes:
    description:
      - The routes to manage. An empty list is allowed (with O(purge=true) and
        O(tables) it empties tables of owned routes).
      - Required with O(state=present) and O(state=absent); not used with
        O(state=gathered).
    type: list
    elements: dict
    suboptions:
      dst:
        description:
          - Destination prefix in CIDR notation. A bare address means C(/32);
            V(default) means C(0.0.0.0/0). Host bits must be zero.
        type: str
        required: true
      gateway:
        description:
          - Next-hop address. Without O(routes[].dev) the kernel picks the
            interface that reaches the gateway, and any interface is accepted
            as already correct.
        type: str
      dev:
        description:
          - Outgoing interface name. It must exist (and for unicast routes be
            up) when the task runs.
        type: str
      table:
        description:
          - Routing table, as a number or a name (V(main), V(local),
            V(default), or a name from iproute2's C(rt_tables)).
        type: raw
        default: main
      scope:
        description:
          - Route scope. Default as C(ip route) chooses it, V(host) for
            V(local) routes, V(link) for unicast routes without a gateway,
            V(universe) otherwise.
        type: str
        choices: [universe, link, host]
      metric:
        description:
          - Route metric (preference); part of the route's identity.
        type: int
        default: 0
        aliases: [priority]
      onlink:
        description:
          - Treat the gateway as directly reachable on O(routes[].dev), even
            without a link route covering it. Needs both a gateway and a dev.
        type: bool
        default: false
      src:
        description:
          - Preferred source address. It must be an address of the host.
        type: str
      type:
        description:
          - Route type. V(local) delivers to the host itself (for example
            C(local 0.0.0.0/0 dev lo) in a table used for transparent proxying).
        type: str
        choices: [unicast, local, blackhole, unreachable, prohibit, throw]
        default: unicast
  state:
    description:
      - V(present) makes every listed route exist exactly as described.
      - V(absent) removes the owned routes with the listed identities (only
        O(routes[].dst), O(routes[].table) and O(routes[].metric) matter). A
        route of another protocol with such an identity is left alone, with a
        warning.
      - V(gathered) writes nothing and returns the owned routes of O(tables)
        (of every table when O(tables) is empty) in RV(gathered), in the form
        O(routes) takes. O(routes) must be empty and O(purge) false.
    type: str
    choices: [present, absent, gathered]
    default: present
  purge:
    description:
      - Also remove every owned route, in the tables in scope, that is not
        listed. The tables in scope are those of the listed routes plus
        O(tables). Routes of other protocols are never touched.
      - With O(state=absent) this removes every owned route in those tables.
    type: bool
    default: false
  tables:
    description:
      - More tables to include in the scope of O(purge) and of the diff,
        besides the tables of the listed routes.
      - With O(state=gathered), the tables to read.
    type: list
    elements: raw
    default: []
  protocol:
    description:
      - The route protocol (C(rtm_protocol)) that marks routes as owned by
        this collection. Must be 5-255, since 0-4 belong to the kernel and the
        administrator.
    type: int
    default: 201
notes:
  - Check mode computes everything, including conflicts and missing
    interfaces, and writes nothing. With C(--diff), the owned routes of the
    tables in scope are shown before and after, and the writes as RV(changes).
  - Only IPv4, single-path routes are managed. Owned multipath routes are
    shown, replaced or purged like any other owned route.
  - To act in another network namespace, run the module there (for example
    through the collection's C(palisade.ebpf.netns) connection).
seealso:
  - module: palisade.ebpf.ip_rule
"""

EXAMPLES = r"""
- name: Route the other nodes' pod prefixes through their node addresses
  palisade.ebpf.ip_route:
    routes:
      - dst: 192.0.2.12
        dev: eth0
      - dst: 10.1.2.0/24
        gateway: 192.0.2.12
        dev: eth0
    purge: true

- name: Local-delivery table for marked (L7-redirected) flows
  palisade.ebpf.ip_route:
    routes:
      - dst: 0.0.0.0/0
        type: local
        dev: lo
        table: 2004

- name: Remove one route (only if it is ours)
  palisade.ebpf.ip_route:
    routes:
      - dst: 10.1.2.0/24
    state: absent

- name: Remove every owned route from table 2004
  palisade.ebpf.ip_route:
    routes: []
    tables: [2004]
    purge: true

- name: Read the owned routes of table main
  palisade.ebpf.ip_route:
    state: gathered
    tables: [main]
  register: owned_routes
"""

RETURN = r"""
before:
  description:
    - The owned routes of the tables in scope before the task, in the input
      schema of O(routes), sorted by table, destination and metric. Routes
      through an interface of C(palisade.ebpf.endpoint) are that module's and
      are not listed.
    - An owned route made outside the module may carry C(tos) or
      C(multipath), which the module cannot set itself.
  returned: when O(state) is V(present) or V(absent)
  type: list
  elements: dict
  sample:
    - {dst: 10.1.9.0/24, gateway: 192.0.2.19, dev: eth0, table: main, type: unicast, scope: universe, metric: 0, onlink: false}
after:
  description:
    - The owned routes of the tables in scope after the task, in the same
      form as RV(before). Predicted in check mode, read back from the kernel
      otherwise.
  returned: when O(state) is V(present) or V(absent)
  type: list
  elements: dict
  sample:
    - {dst: 10.1.2.0/24, gateway: 192.0.2.12, dev: eth0, table: main, type: unicast, scope: universe, metric: 0, onlink: false}
changes:
  description:
    - The netlink writes, one per line, in the order they were (or in check
      mode would be) made. C(+) adds a route, C(~) replaces the owned route
      with the same identity in place, C(-) removes one.
    - With C(--diff), the diff shows RV(before) and RV(after) one route per
      line, and these lines as its C(prepared) text.
  returned: when O(state) is V(present) or V(absent)
  type: list
  elements: str
  sample:
    - + 192.0.2.12/32 dev eth0 scope link table main
    - ~ 10.1.3.0/24 via 192.0.2.13 dev eth0 onlink table main
    - "- 10.1.9.0/24 via 192.0.2.19 dev eth0 table main"
gathered:
  description:
    - With O(state=gathered), the owned routes of the tables in O(tables)
      (of every table when O(tables) is empty), in the form of RV(before).
      Nothing is written.
  returned: when O(state) is V(gathered)
  type: list
  elements: dict
  sample:
    - {dst: 0.0.0.0/0, dev: lo, table: 2004, type: local, scope: host, metric: 0, onlink: false}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import ROUTE_PROTOCOL
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.reconcile import reconcile_routes, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            routes=dict(
                type="list",
                elements="dict",
                options=dict(
                    dst=dict(type="str", required=True),
                    gateway=dict(type="str"),
                    dev=dict(type="str"),
                    table=dict(type="raw", default="main"),
                    scope=dict(type="str", choices=["universe", "link", "host"]),
                    metric=dict(type="int", default=0, aliases=["priority"]),
                    onlink=dict(type="bool", default=False),
                    src=dict(type="str"),
                    type=dict(type="str", default="unicast", choices=["unicast", "local", "blackhole", "unreachable", "prohibit", "throw"]),
                ),
            ),
            state=dict(type="str", default="present", choices=["present", "absent", "gathered"]),
            purge=dict(type="bool", default=False),
            tables=dict(type="list", elements="raw", default=[]),
            protocol=dict(type="int", default=ROUTE_PROTOCOL),
        ),
        required_if=[("state", "present", ["routes"]), ("state", "absent", ["routes"])],
        supports_check_mode=True,
    )
    run_module(module, reconcile_routes, module.params["routes"], tables=module.params["tables"])


if __name__ == "__main__":
    main()
