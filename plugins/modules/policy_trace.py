#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: policy_trace
short_description: Verdicts of the fleet's policies for probes, computed on the controller
version_added: 0.1.0
description:
  - Computes, from the policies alone, what the datapath does with each probe's first packet and, for flows
    redirected to the L7 proxy, with its HTTP request. No traffic is sent and no host is contacted.
  - A probe passes the source endpoint's egress policy and the destination endpoint's ingress policy, each
    evaluated on the host that enforces it. Replies are left to connection tracking and not evaluated.
  - The fleet, namespaces and policies come from the inventory, as for M(palisade.ebpf.fleet_state), unless
    O(endpoints), O(namespaces) or O(policies) are given.
  - A probe naming an unknown endpoint, a bad address or an unknown named port fails the task with a
    one-line message naming the probe.
author: palisade.ebpf developers (@palisade-ebpf)
attributes:
  check_mode:
    description: Computes only; nothing is changed in either mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: none
  platform:
    description: Runs on the controller.
    platforms: posix
    support: full
  action:
    description: Implemented as an action plugin.
    support: full
options:
  probes:
    description: The probes to trace.
    type: list
    elements: dict
    required: true
    suboptions:
      from:
        description: Source, C(namespace/name) of an endpoint (C(name) alone means namespace C(default)) or an IPv4 address.
        type: str
        required: true
      to:
        description: Destination, C(namespace/name) of an endpoint or an IPv4 address.
        type: str
        required: true
      port:
        description: Destination port number, or a named port of the destination endpoint.
        type: raw
        required: true
      protocol:
        description: Transport protocol. For a named port, defaults to the port's protocol.
        type: str
        choices: [TCP, UDP, SCTP]
        default: TCP
      http:
        description:
          - The HTTP request, judged when the flow is redirected to the L7 proxy. A redirected flow probed
            without it is judged as C(GET /).
        type: dict
        suboptions:
          method:
            description: Request method.
            type: str
            default: GET
          path:
            description: Request path.
            type: str
            default: /
          headers:
            description: Request headers. C(Host) defaults to the destination address and port.
            type: dict
  endpoints:
    description:
      - Endpoints to trace against instead of the inventory's, in the C(palisade_endpoints) schema, each with
        the C(host) (inventory hostname) it lives on. Inventory hosts keep their C(palisade_node) address;
        other hosts get a placeholder node address from 240.0.0.0/4.
    type: list
    elements: dict
  namespaces:
    description: Namespace labels instead of the inventory's C(palisade_namespaces).
    type: dict
  policies:
    description: Policy documents instead of the inventory's C(palisade_policies) and C(palisade_policy_files).
    type: list
    elements: dict
"""

EXAMPLES = r"""
- name: May the tiefighter land, and may the xwing?
  palisade.ebpf.policy_trace:
    probes:
      - {from: default/tiefighter, to: default/deathstar-1, port: http, http: {method: POST, path: /v1/request-landing}}
      - {from: default/xwing, to: 10.1.1.10, port: 80}
  register: trace

- name: What would this policy do? (endpoints and policies given, nothing from the inventory)
  palisade.ebpf.policy_trace:
    endpoints:
      - {host: node1, name: a, namespace: x, ipv4: 10.9.0.1, labels: {pod: a}}
      - {host: node2, name: b, namespace: y, ipv4: 10.9.0.2, labels: {pod: b}}
    policies:
      - apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-all, namespace: y}
        spec: {podSelector: {}}
    probes:
      - {from: x/a, to: y/b, port: 80}
  register: what_if
"""

RETURN = r"""
results:
  description: One result per probe, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    verdict:
      description: C(allow) when both L4 and (if applied) L7 allow, else C(deny).
      type: str
    l4:
      description: What the datapath does with the packet, C(allow) or C(deny).
      type: str
    l7:
      description: For a flow redirected to the L7 proxy, whether the HTTP request matches (C(allow)) or gets a
        403 (C(deny)); null when the flow is not redirected (or L4 denies it).
      type: str
    reason:
      description: One line saying which direction and which rule decided.
      type: str
    policies:
      description: Names of the policies that decided (the deny, the allows, or those enforcing default deny).
      type: list
      elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    probe = dict(
        protocol=dict(type="str", choices=["TCP", "UDP", "SCTP"], default="TCP"),
        http=dict(type="dict", options=dict(
            method=dict(type="str", default="GET"),
            path=dict(type="str", default="/"),
            headers=dict(type="dict"),
        )),
        port=dict(type="raw", required=True),
        to=dict(type="str", required=True),
    )
    probe["from"] = dict(type="str", required=True)
    module = AnsibleModule(argument_spec=dict(
        probes=dict(type="list", elements="dict", required=True, options=probe),
        endpoints=dict(type="list", elements="dict"),
        namespaces=dict(type="dict"),
        policies=dict(type="list", elements="dict"),
    ), supports_check_mode=True)
    module.fail_json(msg="palisade.ebpf.policy_trace runs on the controller through its action plugin; it cannot run as a plain module")


if __name__ == "__main__":
    main()
