#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: datapath
short_description: Enforce L3/L4 identity-based policy on this host's endpoints with eBPF
version_added: 0.1.0
description:
  - Reconciles the host's eBPF datapath to its desired state, touching only what differs; a second run
    with the same input reports C(changed=false) and writes nothing to the kernel.
  - Two tc programs on each endpoint's host-side interface enforce its egress policy (tc ingress) and its
    ingress policy (tc egress), with anti-spoofing, connection tracking (replies and established flows of
    allowed connections pass), an IP to identity table of the whole fleet, drop counters and drop events.
  - The programs are rendered on the controller from O(settings) (the action plugin of the same name) and
    compiled on the host with bcc once per distinct rendering; the result is pinned under
    O(bpffs_dir)C(/progs/<hash>) and reused, so a run with an unchanged rendering never invokes the compiler.
    Endpoints are configured through maps keyed by interface index, never by recompiling.
  - Maps are pinned under O(bpffs_dir)C(/maps); entries are diffed against the kernel, new entries are written
    before stale ones are removed, and programs are replaced atomically. A program the verifier rejects
    leaves the attached ones in place and fails with the verifier's log.
  - See docs/datapath.md for map layouts and the program flow.
author: palisade.ebpf developers (@palisade-ebpf)
extends_documentation_fragment:
  - palisade.ebpf.attributes
requirements:
  - bcc for the managed host's Python (Debian package python3-bpfcc), and kernel headers for bcc
  - pyroute2 (Debian package python3-pyroute2)
  - Linux 5.11 or later with bpffs mounted, cls_bpf and the clsact qdisc
options:
  state:
    description:
      - V(present) reconciles the datapath; V(absent) detaches every program of the collection in this
        network namespace and removes O(bpffs_dir) with its pins.
    type: str
    choices: [present, absent]
    default: present
  bpffs_dir:
    description:
      - Directory on the bpf filesystem for this host's maps and programs; one per host, so that lab hosts
        sharing one machine do not collide (host var C(palisade_bpffs_dir)).
    type: path
    required: true
  ipcache:
    description:
      - The whole fleet's IP to identity table, a list of C([prefix, identity]); a bare address means C(/32).
        Endpoints, node addresses and policy CIDRs; addresses in no prefix are C(world) (2).
    type: list
    elements: list
    default: []
  ipcache_packed:
    description:
      - The same table packed as one base64 string of 9-byte records (address, prefix length, identity; network
        byte order), as the datapath role passes it; a prefix packed twice takes its last identity; entries are
        added to O(ipcache). A large list costs Ansible seconds per host to template and transfer, one string next
        to nothing.
    type: str
  endpoints:
    description: This host's endpoints.
    type: list
    elements: dict
    default: []
    suboptions:
      key:
        description: C(namespace/name) of the endpoint, for messages and diffs.
        type: str
        required: true
      ifname:
        description: Its host-side interface, which must exist (see M(palisade.ebpf.endpoint)).
        type: str
        required: true
      ipv4:
        description: Its address; packets leaving the endpoint with another source are dropped.
        type: str
        required: true
      identity:
        description: Its security identity.
        type: int
        required: true
      policy:
        description: The name of its policy in O(policies); null for no policy (open in both directions).
        type: str
  policies:
    description:
      - Per-endpoint policies by name, each C({ingress, egress}), each direction
        C({enforced, entries}); an entry is C([peer_identity, proto, port_lo, port_hi, verdict]) with peer 0
        for any peer, proto 0 (any), 1, 6, 17 or 132, the destination port range (ICMP the type range), and
        verdict C(allow), C(deny) or C(redirect) (allowed at L4 and handed to the L7 proxy when
        C(settings.l7_redirect) is on; otherwise it passes and is counted separately).
      - Deny wins; otherwise the most specific L4 match among the allows decides; with no match the
        packet is dropped when the direction is enforced and passes when it is not
        (docs/policy-engine.md).
    type: dict
    default: {}
  uplinks:
    description:
      - Interfaces through which traffic from other hosts arrives. With the L7 redirect on
        (C(settings.l7_redirect)), their tc ingress runs the program that sends flows into this host's
        endpoints to the L7 proxy when the endpoint's ingress policy has HTTP rules; that decision must be
        taken before routing. Unused without the L7 redirect.
      - When omitted, the interfaces holding O(node_ipv4).
    type: list
    elements: str
  node_ipv4:
    description: The host's underlay address (C(palisade_node.ipv4)); finds the uplinks when O(uplinks) is omitted.
    type: str
  identities:
    description: Optional identity to label text, only used to make diffs readable.
    type: dict
    default: {}
  settings:
    description:
      - Host-level settings the programs are rendered with (map sizes, conntrack timeouts, feature
        switches); changing one compiles once on that host. Keys and defaults are in
        C(plugins/module_utils/_datapath/settings.py) and docs/datapath.md.
    type: dict
    default: {}
  source:
    description:
      - The rendered program source. Set by the C(palisade.ebpf.datapath) action plugin on the controller;
        not meant to be given by hand. With O(fleet), sent only when the host has not compiled this rendering yet.
    type: str
  source_hash:
    description:
      - The rendering's hash, sent instead of O(source) when the host may have it compiled already. Set by the
        action plugin.
    type: str
  fleet:
    description:
      - C(palisade.ebpf.fleet_state)'s registered result. The action plugin reads this host's state from the share
        store it names and sends the host only what changed since the version the host keeps (O(artifacts));
        it is not passed to the host. Replaces O(ipcache), O(ipcache_packed), O(endpoints), O(policies) and
        O(identities). See docs/fleet-scale.md, "What a run ships".
    type: dict
  artifacts:
    description:
      - This host's desired state as two versioned artifacts, C(fleet) (the fleet's IP table) and C(host) (its
        endpoints, policies, identity labels and own IP table rows), each as a version with deltas from earlier
        versions or in full. Set by the action plugin from O(fleet); not meant to be given by hand.
      - The host keeps the version it applied last in O(state_dir) and checks the copy against its version
        before using it. A host that holds none of the versions a delta starts from answers with RV(stale) and
        the action plugin sends the full document.
    type: dict
  state_dir:
    description:
      - Where this host keeps the artifacts it applied last (with O(fleet)). Removed with O(state=absent).
      - Default C(/var/lib/palisade/<name>/datapath), where C(<name>) is the last component of O(bpffs_dir)
        (C(<lab prefix>-<host>) by default, the directory that also holds the host's L7 proxy directory).
    type: path
notes:
  - Run with the managed host's system Python (C(ansible_python_interpreter=/usr/bin/python3)), where bcc is.
  - There is no C(state=gathered) - the kernel holds endpoints by interface index and policies compiled into
    nodes, not in this module's input schema; M(palisade.ebpf.datapath_info) reads the endpoint configs, counters
    and drop events.
"""

EXAMPLES = r"""
- name: Enforce this host's policies
  palisade.ebpf.datapath:
    bpffs_dir: /sys/fs/bpf/palisade
    ipcache:
      - ["10.1.1.10/32", 123456789]
      - ["10.1.1.11/32", 987654321]
      - ["0.0.0.0/0", 2]
    endpoints:
      - key: default/deathstar-1
        ifname: lxcd96b5160
        ipv4: 10.1.1.10
        identity: 123456789
        policy: deathstar
    policies:
      deathstar:
        ingress:
          enforced: true
          entries:
            - [987654321, 6, 80, 80, allow]
        egress:
          enforced: false
          entries: []

- name: Remove the datapath from this host
  palisade.ebpf.datapath:
    bpffs_dir: /sys/fs/bpf/palisade
    state: absent
"""

RETURN = r"""
before:
  description:
    - What the module owned on the host before the run, as a summary, since its objects (60,000 IP table entries
      and more) are too many to list - the renderings whose programs are pinned, the map pins, the tc attachments
      per interface and direction, the L7 steering and the number of entries of each reconciled map (at this
      rendering's layout). RV(changes) says what changes in the maps.
    - With C(--diff), one line each as the diff's before text.
  returned: always
  type: dict
  contains:
    programs:
      description: Hashes of the renderings pinned under O(bpffs_dir)C(/progs).
      type: list
      elements: str
    maps:
      description: Pin names under O(bpffs_dir)C(/maps) (C(<map>-<layout>)).
      type: list
      elements: str
    attached:
      description: The collection's tc programs, C(<program>:<rendering hash>), by interface and tc direction.
      type: dict
    steering:
      description: How redirected flows reach the L7 proxy, C(sk_lookup) or C(tproxy); empty without the L7 redirect.
      type: list
      elements: str
    entries:
      description: Entries of the maps the module reconciles (C(endpoints), C(ipcache_host), C(ipcache_prefix), C(policy)).
      type: dict
  sample:
    programs: ["3f1c9a0d2b7e4c11"]
    maps: ["endpoints-7724f1f7", "ipcache_host-230aa899", "policy-43117f0a"]
    attached: {"lxcd96b5160": {"egress": "to_endpoint:3f1c9a0d2b7e4c11", "ingress": "from_endpoint:3f1c9a0d2b7e4c11"}}
    steering: []
    entries: {"endpoints": 1, "ipcache_host": 2, "ipcache_prefix": 1, "policy": 1}
after:
  description:
    - The same summary after the run, as the plan leaves it (every write either succeeds or the task fails);
      in check mode what the run would leave. Equal to RV(before) when nothing changed.
    - With C(--diff), one line each as the diff's after text.
  returned: always
  type: dict
changes:
  description:
    - Every write, in the order it was (or, in check mode, would be) made, one line each in human terms
      (policy names, identities with their labels, protocols and ports) - C(+) adds, C(-) removes, C(~) changes in
      place. Empty when nothing differed.
    - With C(--diff), the diff's prepared text.
  returned: always
  type: list
  elements: str
  sample:
    - "+ policy deathstar ingress: from 987654321 (k8s:class=tiefighter) tcp/80: allow"
    - "+ attach tc ingress of lxcd96b5160 (default/deathstar-1): from_endpoint 3f1c9a0d2b7e4c11"
writes:
  description: Kernel map writes (updates and deletes) per map; all zero when nothing differed.
  returned: always
  type: dict
  sample: {"endpoints": 1, "ipcache_host": 3, "ipcache_prefix": 1, "policy": 2}
attachments:
  description: tc filters attached, replaced (atomically, with a new program) and detached.
  returned: always
  type: dict
  sample: {"attached": 2, "replaced": 0, "detached": 0}
program:
  description: The rendering's hash and whether this run compiled it.
  returned: when state is present
  type: dict
  sample: {"hash": "3f1c9a0d2b7e4c11", "compiled": false}
timings:
  description: Seconds spent observing, compiling, writing maps and changing tc filters.
  returned: when state is present
  type: dict
  sample: {"observe_maps": 0.01, "compile": 1.9, "map_writes": 0.002, "tc": 0.004, "total": 2.1}
transfer:
  description:
    - With O(fleet), how each artifact reached the host - V(kept) (the copy it held was current), V(delta) or
      V(full) - whether the program source was sent, the bytes of module arguments the controller sent
      (over every attempt) and the attempts made.
  returned: with O(fleet)
  type: dict
  sample: {"fleet": "delta", "host": "kept", "source": false, "bytes": 1873, "attempts": 1}
stale:
  description:
    - The artifacts (C(fleet), C(host)), C(objects) (policy objects, listed in C(missing_objects)) or C(program) the host
      could not build from what it was sent; nothing was changed. The action plugin answers with what is missing, whole,
      so a task only shows this when it was called without the action plugin.
  returned: when the host needs a full document
  type: list
  elements: str
endpoints:
  description: The number of endpoints in the input.
  returned: when state is present
  type: int
  sample: 1
verifier_log:
  description: The compiler's or verifier's output, when the program was rejected.
  returned: on a rejected program
  type: str
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import artifacts as dp_artifacts
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import programs, reconcile
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import DatapathError, VerifierError
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.settings import SettingsError
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import StateError, unpack_ipcache
from ansible_collections.palisade.ebpf.plugins.module_utils._result import exit_reconciled

try:
    from pyroute2 import IPRoute
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError:
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()


def interfaces_with(address):
    """Names of the interfaces holding ``address`` in this network namespace."""
    with IPRoute() as ipr:
        indexes = set(msg["index"] for msg in ipr.get_addr(family=2) if msg.get_attr("IFA_ADDRESS") == address)
        return sorted(link.get_attr("IFLA_IFNAME") for link in ipr.get_links() if link["index"] in indexes)


# What the artifacts replace: the desired state given directly.
DIRECT = ("ipcache", "ipcache_packed", "endpoints", "policies", "identities")


def keep_copies(module, resolved, copies, object_copies):
    """Keep what was applied, for the next run's deltas. The kernel already
    holds it, so a copy that cannot be written costs the next run a full
    transfer, not this run its result."""
    try:
        resolved.keep(copies, object_copies)
    except (IOError, OSError) as exc:
        module.warn("cannot keep the applied artifacts in %s (%s): the next run sends them in full"
                    % (copies.directory, exc))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            bpffs_dir=dict(type="path", required=True),
            ipcache=dict(type="list", elements="list", default=[]),
            ipcache_packed=dict(type="str"),
            endpoints=dict(type="list", elements="dict", default=[], options=dict(
                key=dict(type="str", required=True, no_log=False),
                ifname=dict(type="str", required=True),
                ipv4=dict(type="str", required=True),
                identity=dict(type="int", required=True),
                policy=dict(type="str"),
            )),
            policies=dict(type="dict", default={}),
            identities=dict(type="dict", default={}),
            uplinks=dict(type="list", elements="str"),
            node_ipv4=dict(type="str"),
            settings=dict(type="dict", default={}),
            source=dict(type="str", no_log=True),
            source_hash=dict(type="str"),
            fleet=dict(type="dict"),
            artifacts=dict(type="dict"),
            state_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 (Debian: python3-pyroute2)"), exception=PYROUTE2_IMPORT_ERROR)
    params = module.params
    if params["fleet"] is not None:
        module.fail_json(msg="fleet is read by the palisade.ebpf.datapath action plugin on the controller: run the "
                             "module as a task, not on its own")
    state_dir = params["state_dir"] or dp_artifacts.default_state_dir(params["bpffs_dir"])
    copies = artifact.LocalCopies(state_dir)
    object_copies = dp_artifacts.policy_copies(state_dir)
    raw_state = dict((key, params[key]) for key in ("bpffs_dir", "ipcache", "endpoints", "policies", "identities"))
    resolved = None
    try:
        if params["artifacts"] is not None and params["state"] == "present":
            given = [key for key in DIRECT if params[key]]
            if given:
                module.fail_json(msg="artifacts replace %s: give one or the other" % ", ".join(given))
            resolved = dp_artifacts.resolve(params["artifacts"], copies, object_copies)
            if resolved.stale:
                names = list(resolved.stale)
                if not params["source"] and not os.path.isdir(programs.prog_pin(params["bpffs_dir"], params["source_hash"] or "-", "")):
                    names.append("program")  # saves the attempt that would find out
                module.exit_json(changed=False, stale=names, missing_objects=resolved.missing, msg="; ".join(resolved.reasons))
            raw_state.update(resolved.state())
        if params["ipcache_packed"]:
            raw_state["ipcache"] = list(raw_state["ipcache"]) + unpack_ipcache(params["ipcache_packed"])
        raw_state["uplinks"] = params["uplinks"]
        if params["uplinks"] is None and params["node_ipv4"] and params["state"] == "present":
            raw_state["uplinks"] = interfaces_with(params["node_ipv4"])
            if not raw_state["uplinks"] and (params["settings"] or {}).get("l7_redirect"):
                module.warn("no interface holds %s, so no uplink decides the L7 redirect of flows from other hosts: "
                            "those needing the proxy are dropped (DROP_L7_BYPASS); set palisade_uplinks"
                            % params["node_ipv4"])
        rec = reconcile.Reconciler(raw_state, params["settings"], params["source"] or "", module.check_mode, IPRoute,
                                   source_hash=params["source_hash"])
        if params["state"] == "present":
            if not params["source"] and not params["source_hash"]:
                module.fail_json(msg="source is missing: run palisade.ebpf.datapath as a task, so that its action "
                                     "plugin renders the programs on the controller")
            result = rec.present()
            if resolved is not None:
                if not module.check_mode:
                    keep_copies(module, resolved, copies, object_copies)
                result["transfer"] = dict(resolved.how, source=bool(params["source"]))
        else:
            result = rec.absent()
            if os.path.isdir(state_dir):
                result["changed"] = True
                result.setdefault("changes", []).append("- artifacts in %s" % state_dir)
                if not module.check_mode:
                    dp_artifacts.remove_state_dir(state_dir)
    except reconcile.ProgramNotHeld as exc:
        module.exit_json(changed=False, stale=["program"], msg=str(exc))
    except (StateError, SettingsError, artifact.ArtifactError) as exc:
        module.fail_json(msg=str(exc))
    except VerifierError as exc:
        module.fail_json(msg=str(exc), verifier_log=exc.details or "")
    except DatapathError as exc:
        module.fail_json(msg=str(exc), details=exc.details or "")
    exit_reconciled(module, result)


if __name__ == "__main__":
    main()
