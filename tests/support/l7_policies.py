# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the L7 proxy's tests (plugin_utils/_want.py: what the proxy
wants; plugin_utils/_render/haproxy.py: how HAProxy gets it): Star Wars
endpoints, policy builders, a host's share as a playbook sees it, and
readers of a proxy want."""

import json

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _shares
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _want

from tests.support import policy_harness as h

DEATHSTAR = h.ep("default/deathstar", "10.1.1.10", {"org": "empire", "class": "deathstar"})
TIEFIGHTER = h.ep("default/tiefighter", "10.1.1.20", {"org": "empire", "class": "tiefighter"})
XWING = h.ep("default/xwing", "10.1.1.30", {"org": "alliance", "class": "xwing"})
REMOTE_XWING = h.ep("default/xwing", "10.1.2.10", {"org": "alliance", "class": "xwing"}, host="node2")


def cnp(name, spec):
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def l7_port(port, *http_rules):
    return [{"ports": [{"port": str(port), "protocol": "TCP"}], "rules": {"http": list(http_rules)}}]


def l4_port(port):
    return [{"ports": [{"port": str(port), "protocol": "TCP"}]}]


def deathstar_ingress(name, *rules):
    return cnp(name, {"endpointSelector": {"matchLabels": {"class": "deathstar"}}, "ingress": list(rules)})


def share_of(lab, host="node1"):
    """The host's share as a playbook sees it (after Ansible's JSON round trip)."""
    return json.loads(json.dumps(_shares.host_share(lab.fleet, host, policy=lab.policy)))


def identity(lab, key):
    return lab.policy.endpoint(key)["identity"]


def key_of(lab, endpoint_key):
    ref = [e for e in share_of(lab)["enforcement"] if e["key"] == endpoint_key][0]["policy"]
    return _want.policy_key(ref)


def ruleset(want, rid):
    (found,) = [r for r in want["rulesets"] if r["id"] == rid]
    return found


def criteria(want, rid):
    """{acl name: criterion} of a ruleset."""
    return {acl["name"]: acl["criterion"] for acl in ruleset(want, rid)["acls"]}


def rule_criteria(want, rid):
    """Each rule's condition spelled out as its criteria (negations kept)."""
    names = criteria(want, rid)
    spelled = []
    for rule in ruleset(want, rid)["rules"]:
        words = rule["condition"].split()
        spelled.append(sorted(("!" if w.startswith("!") else "") + names[w.lstrip("!")] for w in words))
    return spelled


def proxy_lookup(want, polkey, side, port, peer):
    """The ruleset HAProxy's frontend picks: the peer's key, else the
    any-peer key; "-" means none (as the template's lookups do)."""
    rules = want["rules"]
    value = rules.get("%s/%s/%d/%d" % (polkey, side, port, peer))
    if value is None:
        value = rules.get("%s/%s/%d/0" % (polkey, side, port))
    return None if value in (None, _want.NO_L7) else value
