#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: datapath_info
short_description: Read the eBPF datapath's counters and recent drops on this host
version_added: 0.1.0
description:
  - Returns the packet and byte counters of the datapath per reason and direction (forwarding reasons and
    drop reasons, the latter with Cilium's drop codes), and the drop events waiting in its ring buffer
    (reason, direction, addresses, ports or ICMP type, identities).
  - Reading the ring buffer consumes its events; each call returns the drops since the previous one (up to
    O(events)). Counters are never reset.
author: palisade.ebpf developers (@palisade-ebpf)
requirements:
  - bcc for the managed host's Python (Debian package python3-bpfcc)
options:
  bpffs_dir:
    description: The datapath's directory on the bpf filesystem, as given to M(palisade.ebpf.datapath).
    type: path
    required: true
  events:
    description: Return at most this many of the most recent drop events; 0 leaves the ring buffer unread.
    type: int
    default: 100
  endpoints:
    description: Also return the endpoint configurations (interface index, address, identity, enforcement).
    type: bool
    default: false
  proxy_dir:
    description:
      - The L7 proxy's directory (M(palisade.ebpf.l7proxy) O(palisade.ebpf.l7proxy#module:dir)); when given,
        RV(l7) adds the proxy's own counters read from its stats socket.
    type: path
attributes:
  check_mode:
    description: Reads only (besides consuming drop events), so it runs the same in check mode.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
"""

EXAMPLES = r"""
- name: Read counters and the latest drops
  palisade.ebpf.datapath_info:
    bpffs_dir: /sys/fs/bpf/palisade
  register: datapath

- name: Show the drops
  ansible.builtin.debug:
    var: datapath.drops
"""

RETURN = r"""
counters:
  description: Non-zero counters per reason and direction.
  returned: always
  type: list
  elements: dict
  sample:
    - {"reason": "FORWARD_NEW", "code": 0, "drop": false, "direction": "ingress", "packets": 3, "bytes": 222}
    - {"reason": "DROP_POLICY", "code": 133, "drop": true, "direction": "ingress", "packets": 2, "bytes": 148}
drops:
  description: Dropped packets per reason and direction (the drop subset of RV(counters)), keyed C(<reason>/<direction>).
  returned: always
  type: dict
  sample: {"DROP_POLICY/ingress": 2, "DROP_INVALID_SIP/egress": 1}
events:
  description: Drop events, oldest first.
  returned: always
  type: list
  elements: dict
  sample:
    - {"reason": "DROP_POLICY", "code": 133, "direction": "ingress", "ifindex": 7, "src": "10.1.1.12",
       "dst": "10.1.1.10", "proto": "tcp", "sport": 40312, "dport": 80, "src_identity": 4242,
       "dst_identity": 123456789, "length": 74, "time_ns": 81723, "time": 1795000000.1}
events_lost:
  description: Drop events the ring buffer had no room for, since the datapath was created.
  returned: always
  type: int
l7:
  description:
    - The L7 redirect, read like the drops. C(redirected) counts flows handed to the proxy (their first packet)
      (FORWARD_REDIRECT), C(from_proxy) new upstream flows of the proxy let in, C(refused) SYNs answered
      with a reset because the proxy was not running (DROP_PROXY_UNAVAILABLE), C(bypass) flows that needed
      the proxy but arrived without it (DROP_L7_BYPASS).
    - C(proxy), with O(proxy_dir), holds the proxy's counters (running, pid, requests, denied with 403,
      5xx responses, upstream connection errors, current connections).
  returned: always
  type: dict
  sample: {"redirected": 42, "from_proxy": 7, "refused": 1, "bypass": 0,
           "proxy": {"running": true, "pid": 4242, "requests": 7, "denied": 2, "responses_5xx": 0,
                     "upstream_errors": 0, "current_connections": 0}}
endpoints:
  description: Endpoint configurations, when O(endpoints) is true.
  returned: when requested
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import telemetry
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.palisade.ebpf.plugins.module_utils._l7proxy.runtime import proxy_stats

L7_COUNTERS = {"redirected": "FORWARD_REDIRECT", "from_proxy": "FORWARD_FROM_PROXY",
               "refused": "DROP_PROXY_UNAVAILABLE", "bypass": "DROP_L7_BYPASS"}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bpffs_dir=dict(type="path", required=True),
            events=dict(type="int", default=100),
            endpoints=dict(type="bool", default=False),
            proxy_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    bpffs_dir = module.params["bpffs_dir"].rstrip("/")
    if not os.path.isdir(os.path.join(bpffs_dir, "maps")):
        module.fail_json(msg="no datapath under %s (run palisade.ebpf.datapath first)" % bpffs_dir)
    try:
        counters = telemetry.counters(bpffs_dir)
        events = telemetry.drop_events(bpffs_dir, max(module.params["events"], 0)) if module.params["events"] else []
        result = {
            "changed": False,
            "counters": [c for c in counters if c["reason"] != "EVENTS_LOST"],
            "drops": dict(("%s/%s" % (c["reason"], c["direction"]), c["packets"]) for c in counters
                          if c["drop"] and c["reason"] != "EVENTS_LOST"),
            "events": events,
            "events_lost": sum(c["packets"] for c in counters if c["reason"] == "EVENTS_LOST"),
        }
        result["l7"] = dict((name, sum(c["packets"] for c in counters if c["reason"] == reason))
                            for name, reason in L7_COUNTERS.items())
        if module.params["proxy_dir"]:
            result["l7"]["proxy"] = proxy_stats(module.params["proxy_dir"])
        if module.params["endpoints"]:
            result["endpoints"] = telemetry.endpoint_configs(bpffs_dir)
    except DatapathError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
