#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: probe
short_description: Send real TCP, UDP and HTTP probes from this node's endpoints
version_added: 0.1.0
description:
  - Sends real traffic from inside the network namespace of one of this node's endpoints and reports
    what happened, one result per probe, in order. Probes from the same endpoint run concurrently.
  - A probe's C(verdict) is C(allow) when the TCP connection was established (TCP), the echo came back
    (UDP), or the HTTP response status was 2xx (when O(probes[].http) is given); otherwise C(deny).
  - The action plugin resolves O(probes[].from) against this host's C(palisade_endpoints) and named
    ports against the destination endpoint's declared ports, from the inventory.
  - Probing changes nothing, so the module reports C(changed=false) and also probes in check mode.
author: palisade.ebpf developers (@palisade-ebpf)
attributes:
  check_mode:
    description: Probes are read-only and run in check mode too.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  platform:
    description: Linux with network namespaces.
    platforms: posix
    support: full
  action:
    description: An action plugin resolves endpoints and named ports on the controller.
    support: full
options:
  probes:
    description: The probes to send.
    type: list
    elements: dict
    required: true
    suboptions:
      from:
        description: Source endpoint as C(namespace/name) (C(name) alone means namespace C(default)); must live on this node.
        type: str
        required: true
      to:
        description: Destination IPv4 address.
        type: str
        required: true
      port:
        description: Destination port number, or a named port of the destination endpoint.
        type: raw
        required: true
      protocol:
        description: Transport protocol.
        type: str
        choices: [TCP, UDP, SCTP]
        default: TCP
      http:
        description: Send an HTTP request over the TCP connection and judge by its status.
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
            description: Request headers.
            type: dict
          body:
            description: Request body.
            type: str
  timeout:
    description: Seconds to wait for each probe.
    type: float
    default: 2
  endpoints:
    description: This node's endpoints (name, namespace, netns); filled in by the action plugin from C(palisade_endpoints).
    type: list
    elements: dict
    default: []
  lab_prefix:
    description: Prefix of derived network namespace names; filled in by the action plugin from C(palisade_lab_prefix).
    type: str
    default: pal
"""

EXAMPLES = r"""
- name: Can the tiefighter land?
  palisade.ebpf.probe:
    probes:
      - {from: default/tiefighter, to: 10.1.1.10, port: http, http: {method: POST, path: /v1/request-landing}}
      - {from: default/tiefighter, to: 10.1.2.10, port: 80}
  register: landing
"""

RETURN = r"""
results:
  description: One result per probe, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    connected:
      description: Whether the connection was established (TCP, SCTP) or the echo came back (UDP).
      type: bool
    http_status:
      description: The HTTP status, when an HTTP request was sent and answered.
      type: int
    verdict:
      description: C(allow) or C(deny), as described above.
      type: str
    error:
      description: Why a probe did not connect (timeout, refused, unsupported protocol), else null.
      type: str
    from:
      description: The probe's source endpoint, as C(namespace/name).
      type: str
    to:
      description: The probe's destination address.
      type: str
    port:
      description: The destination port, named ports resolved.
      type: int
    protocol:
      description: The probe's protocol.
      type: str
    http:
      description: The HTTP request's method and path, when one was sent.
      type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import LAB_PREFIX
from ansible_collections.palisade.ebpf.plugins.module_utils._probe import run_probes


def main():
    module = AnsibleModule(
        argument_spec=dict(
            probes=dict(type="list", elements="dict", required=True, options={
                "from": dict(type="str", required=True),
                "to": dict(type="str", required=True),
                "port": dict(type="raw", required=True),
                "protocol": dict(type="str", choices=["TCP", "UDP", "SCTP"], default="TCP"),
                "http": dict(type="dict", options=dict(
                    method=dict(type="str", default="GET"),
                    path=dict(type="str", default="/"),
                    headers=dict(type="dict"),
                    body=dict(type="str"),
                )),
            }),
            timeout=dict(type="float", default=2),
            endpoints=dict(type="list", elements="dict", default=[]),
            lab_prefix=dict(type="str", default=LAB_PREFIX),
        ),
        supports_check_mode=True,
    )
    by_key = {naming.endpoint_key(ep): ep for ep in module.params["endpoints"]}
    probes = module.params["probes"]
    for index, probe in enumerate(probes):
        source = probe["from"] if "/" in probe["from"] else "default/" + probe["from"]
        probe["from"] = source
        if source not in by_key:
            module.fail_json(msg="probes[%d].from: endpoint %s is not one of this node's endpoints (%s)"
                             % (index, source, ", ".join(sorted(by_key)) or "none"))
        port = probe["port"]
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            module.fail_json(msg="probes[%d].port: %r is not a port number (named ports are resolved by the action plugin)" % (index, port))
        probe["port"] = port

    def netns_of(probe):
        name = naming.endpoint_netns(by_key[probe["from"]], module.params["lab_prefix"])
        path = name if name.startswith("/") else os.path.join("/run/netns", name)
        if not os.path.exists(path):
            module.fail_json(msg="endpoint %s: network namespace %s does not exist" % (probe["from"], path))
        return path

    try:
        results = run_probes(probes, netns_of, module.params["timeout"])
    except RuntimeError as exc:
        module.fail_json(msg="probe failed: %s" % exc)
    module.exit_json(changed=False, results=results)


if __name__ == "__main__":
    main()
