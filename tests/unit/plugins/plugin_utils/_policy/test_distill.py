"""Per-subject policy entries (docs/policy-engine.md, "Default deny", "Named
ports", "HTTP"; Cilium's L7 merge and deny rules)."""

import random

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, ir

from tests.support.policy_ir import endpoint, fleet, http_rule, in_ns, peer_rule, port, rule, sel

TCP, UDP, SCTP, ICMP = 6, 17, 132, 1


def small_fleet():
    return fleet({
        "n1": ("192.0.2.1", [
            endpoint("default/web-1", "10.0.0.1", {"app": "web"}, [("http", 8080, "TCP")]),
            endpoint("default/web-2", "10.0.0.2", {"app": "web"}, [("http", 9090, "TCP")]),
            endpoint("default/db", "10.0.0.3", {"app": "db"}, [("pg", 5432, "TCP"), ("dns", 53, "UDP")]),
        ]),
        "n2": ("192.0.2.2", [
            endpoint("default/client", "10.0.1.1", {"app": "client"}),
            endpoint("other/client", "10.0.1.2", {"app": "client"}),
        ]),
    })


WEB = in_ns("default", app="web")
DB = in_ns("default", app="db")
CLIENT = in_ns("default", app="client")


def entries(policy, key, direction="ingress"):
    return sorted(getattr(policy.subject_policy(key), direction).entries(), key=repr)


def ident(policy, key):
    return policy.endpoint(key)["identity"]


def test_l3_only_allow_and_ports():
    policy = engine.compute(small_fleet(), [
        rule("default/l3", DB, ingress=[peer_rule(CLIENT)]),
        rule("default/l4", DB, ingress=[peer_rule(WEB, ports=[port(5432), port(0, "UDP"), port(8000, "TCP", 8010)])]),
    ])
    client, web = ident(policy, "default/client"), ident(policy, "default/web-1")
    assert entries(policy, "default/db") == sorted([
        (client, 0, 0, 65535, False, None, ("default/l3",)),
        (web, TCP, 5432, 5432, False, None, ("default/l4",)),
        (web, UDP, 0, 65535, False, None, ("default/l4",)),
        (web, TCP, 8000, 8010, False, None, ("default/l4",)),
    ], key=repr)
    ingress = policy.subject_policy("default/db").ingress
    assert ingress.enforced and ingress.enforced_by == ("default/l3", "default/l4")
    assert not policy.subject_policy("default/db").egress.enforced


def test_protocol_any_is_tcp_udp_sctp_and_icmp_has_its_own_entries():
    policy = engine.compute(small_fleet(), [rule("r", DB, ingress=[
        peer_rule(CLIENT, ports=[port(53, "ANY")]),
        peer_rule(CLIENT, icmps=[ir.ICMPSpec("IPv4", 8), ir.ICMPSpec("IPv6", 128)]),
    ])])
    client = ident(policy, "default/client")
    assert [e[:4] for e in entries(policy, "default/db")] == sorted(
        [(client, ICMP, 8, 8), (client, TCP, 53, 53), (client, UDP, 53, 53), (client, SCTP, 53, 53)], key=repr)


def test_wildcard_peer_is_identity_zero_and_empty_peers_select_nothing():
    policy = engine.compute(small_fleet(), [
        rule("wild", DB, ingress=[peer_rule(ports=[port(5432)], wildcard=True), peer_rule("all", ports=[port(1)])]),
        rule("none", WEB, ingress=[ir.PeerRule((), (), None, None, None)]),
    ])
    assert [e[:4] for e in entries(policy, "default/db")] == [(0, TCP, 1, 1), (0, TCP, 5432, 5432)]
    web = policy.subject_policy("default/web-1").ingress
    assert web.enforced and list(web.entries()) == []


def test_deny_entries_are_flagged_and_kept_apart_from_allows():
    policy = engine.compute(small_fleet(), [
        rule("allow", DB, ingress=[peer_rule(CLIENT, ports=[port(5432)])]),
        rule("deny", DB, ingress_deny=[peer_rule(CLIENT, ports=[port(5432)])]),
    ])
    client = ident(policy, "default/client")
    assert entries(policy, "default/db") == [
        (client, TCP, 5432, 5432, False, None, ("allow",)),
        (client, TCP, 5432, 5432, True, None, ("deny",)),
    ]


def test_l7_rules_on_one_port_are_ored_and_an_l4_only_allow_cancels_them():
    get = http_rule("GET", "/a")
    post = http_rule("POST", "/b")
    l7 = engine.compute(small_fleet(), [
        rule("get", WEB, ingress=[peer_rule(CLIENT, ports=[port(80)], http=[get])]),
        rule("post", WEB, ingress=[peer_rule(CLIENT, ports=[port(80)], http=[post])]),
    ])
    (entry,) = entries(l7, "default/web-1")
    assert set(entry[5]) == {get, post} and entry[6] == ("get", "post")
    cancelled = engine.compute(small_fleet(), [
        rule("get", WEB, ingress=[peer_rule(CLIENT, ports=[port(80)], http=[get])]),
        rule("l4", WEB, ingress=[peer_rule(CLIENT, ports=[port(80)])]),
    ])
    (entry,) = entries(cancelled, "default/web-1")
    assert entry[5] is None and entry[6] == ("get", "l4")


def test_ingress_named_ports_resolve_against_the_subjects_own_ports():
    policy = engine.compute(small_fleet(), [rule("r", WEB, ingress=[peer_rule(CLIENT, ports=[port("http")])])])
    assert ident(policy, "default/web-1") == ident(policy, "default/web-2")
    one, two = policy.subject_policy("default/web-1"), policy.subject_policy("default/web-2")
    assert [e[1:4] for e in one.ingress.entries()] == [(TCP, 8080, 8080)]
    assert [e[1:4] for e in two.ingress.entries()] == [(TCP, 9090, 9090)]
    assert one.ref != two.ref


def test_egress_named_ports_resolve_against_each_destination():
    policy = engine.compute(small_fleet(), [rule("r", CLIENT, egress=[
        peer_rule(in_ns("default"), ports=[port("http"), port("dns", "UDP"), port("pg", "UDP")])])])
    web, db = ident(policy, "default/web-1"), ident(policy, "default/db")
    assert sorted(e[:4] for e in policy.subject_policy("default/client").egress.entries()) == sorted([
        (web, TCP, 8080, 8080), (web, TCP, 9090, 9090),   # every number behind "http" for that identity
        (db, UDP, 53, 53),                                 # "pg" is TCP: no UDP entry
    ])


def test_subjects_with_the_same_rules_share_their_policy_objects():
    rules = [rule("r", in_ns("default"), ingress=[peer_rule(CLIENT, ports=[port(1)])])]
    policy = engine.compute(small_fleet(), rules)
    web, db, client = (policy.subject_policy(k) for k in ("default/web-1", "default/db", "default/client"))
    assert web.ingress is db.ingress is client.ingress
    assert policy.distiller.built == 3  # that ingress, the empty egress, and other/client's empty ingress


def test_default_deny_only_from_enforcing_rules():
    policy = engine.compute(small_fleet(), [
        rule("adds-only", DB, ingress=[peer_rule(CLIENT)], enforce_ingress=False),
    ])
    ingress = policy.subject_policy("default/db").ingress
    assert not ingress.enforced and ingress.enforced_by == () and len(list(ingress.entries())) == 1


def test_peer_block_agrees_with_materialization():
    """The incremental path computes one peer's block alone; it must give
    what the full partition gives, for every peer of every policy."""
    rng = random.Random(3)
    hosts = {}
    for h in range(4):
        hosts["n%d" % h] = ("192.0.2.%d" % (h + 1), [
            endpoint("ns%d/e%d-%d" % (i % 3, h, i), "10.%d.0.%d" % (h, i + 1),
                     {"app": "a%d" % rng.randrange(4), "tier": "t%d" % rng.randrange(3)},
                     [("http", 80 + rng.randrange(2), "TCP")])
            for i in range(12)])
    fleet_model = fleet(hosts)
    selectors = [sel(app="a%d" % a) for a in range(4)] + [sel(tier="t%d" % t) for t in range(3)] + [sel()]
    rules = []
    for i in range(25):
        section = rng.choice(["ingress", "egress", "ingress_deny", "egress_deny"])
        peers = rng.sample(selectors, 2) + (["world"] if rng.random() < 0.3 else [])
        ports = rng.choice([None, [port(rng.randrange(1, 100))], [port("http")], [port(1000, "ANY", 2000)]])
        http = [http_rule("GET", "/x%d" % i)] if section in ("ingress", "egress") and ports and \
            isinstance(ports[0].port, int) and ports[0].end_port is None and rng.random() < 0.3 else None
        rules.append(rule("r%d" % i, rng.choice(selectors), **{section: [peer_rule(*peers, ports=ports, http=http)]}))
    policy = engine.compute(fleet_model, rules)
    distiller = policy.distiller
    checked = 0
    for direction_policy in distiller.live_policies():
        for peer, block in direction_policy.peers.items():
            assert distiller.peer_block(direction_policy, peer) is block
            checked += 1
        for number in policy.table.numbers():
            if number not in direction_policy.peers:
                assert distiller.peer_block(direction_policy, number) is None
    assert checked > 50


def test_refs_are_stable_and_follow_selection_content():
    rules = [rule("r", DB, ingress=[peer_rule(CLIENT, ports=[port(5432)])])]
    one = engine.compute(small_fleet(), rules).subject_policy("default/db").ref
    two = engine.compute(small_fleet(), list(reversed(rules))).subject_policy("default/db").ref
    assert one == two
    db_ports = [("pg", 5432, "TCP"), ("dns", 53, "UDP")]
    more = fleet({
        "n1": ("192.0.2.1", [endpoint("default/db", "10.0.0.3", {"app": "db"}, db_ports)]),
        "n2": ("192.0.2.2", [endpoint("default/client", "10.0.1.1", {"app": "client", "v": "2"})]),
    })
    assert engine.compute(more, rules).subject_policy("default/db").ref != one
