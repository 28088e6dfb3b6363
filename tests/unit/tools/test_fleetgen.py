# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/fleetgen.py: the generated fleets are deterministic, sized as
asked, valid inventory and valid policy, and exercise what benchmark P1
claims to measure."""

import dataclasses

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _model as model
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir, parse
from tools import fleetgen

SMALL = fleetgen.FleetSpec(hosts=6, endpoints_per_host=20, identities=40, namespaces=3,
                           policies=2 * fleetgen.TEMPLATE_COUNT, seed=7)


def test_generator_is_deterministic_and_sized():
    one, two = fleetgen.generate(SMALL), fleetgen.generate(SMALL)
    assert one.hostvars == two.hostvars and one.documents == two.documents and one.namespaces == two.namespaces
    other = fleetgen.generate(dataclasses.replace(SMALL, seed=8))
    assert other.documents != one.documents
    assert one.stats["endpoints"] == 120 and one.stats["identities"] == 40
    assert one.stats["policies"] == len(one.documents) == 2 * fleetgen.TEMPLATE_COUNT
    assert set(one.stats["policy_kinds"]) == {"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "NetworkPolicy"}
    assert len(one.stats["policy_templates"]) == fleetgen.TEMPLATE_COUNT  # every template used


def test_scaled_keeps_proportions():
    ref = fleetgen.REFERENCE
    assert (ref.hosts, ref.endpoints, ref.identities, ref.policies) == (1000, 60000, 5000, 1000)
    half = fleetgen.scaled(30000)
    assert (half.hosts, half.endpoints_per_host, half.identities, half.policies) == (500, 60, 2500, 500)
    tiny = fleetgen.scaled(100)
    assert tiny.endpoints == 100 and tiny.policies == fleetgen.TEMPLATE_COUNT and tiny.identities <= tiny.endpoints


def test_generated_inventory_and_policies_are_valid():
    fleet = fleetgen.generate(SMALL)
    loaded = model.load_fleet(fleet.hostvars, fleet.namespaces)
    assert sum(len(n["endpoints"]) for n in loaded["nodes"].values()) == 120
    rules = parse.parse_documents(fleet.policy_sources())
    assert all(isinstance(rule, ir.Rule) for rule in rules)
    assert len(rules) >= len(fleet.documents)  # specs lists give one rule per spec
    kinds = {rule.kind for rule in rules}
    assert kinds == {"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "NetworkPolicy"}
    # The features the benchmark claims to exercise reach the IR.
    peer_rules = [pr for rule in rules for section in (rule.ingress, rule.egress, rule.ingress_deny, rule.egress_deny)
                  for pr in section]
    peers = [p for pr in peer_rules for p in (pr.peers or ())]
    ports = [port for pr in peer_rules for port in (pr.ports or ())]
    assert any(isinstance(p, ir.PeerCIDR) and p.excepts for p in peers)
    assert any(isinstance(p, ir.PeerIPBlock) and p.excepts for p in peers)
    assert any(isinstance(p, ir.PeerEntity) for p in peers)
    assert any(pr.http for pr in peer_rules)
    assert any(pr.icmps for pr in peer_rules)
    assert any(port.end_port for port in ports)
    assert any(isinstance(port.port, str) for port in ports)
    assert {port.protocol for port in ports} >= {"TCP", "UDP", "SCTP"}
    assert any(rule.ingress_deny for rule in rules) and any(rule.egress_deny for rule in rules)


def test_change_one_endpoint():
    fleet = fleetgen.generate(SMALL)
    change = fleetgen.change_one_endpoint(fleet.hostvars, "new-identity")
    assert change["labels_before"] != change["labels_after"]
    model.load_fleet(fleet.hostvars, fleet.namespaces)  # still valid
