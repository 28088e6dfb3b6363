"""Inventory validation and the per-host shares computed from it."""

import copy
import pickle

import pytest

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _shares as fleet
from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine
from ansible_collections.palisade.ebpf.plugins.plugin_utils._model import InventoryError, ModelCache, load_fleet

DEMO = {
    "node1": {
        "palisade_node": {"ipv4": "192.0.2.11", "pod_cidr": "10.1.1.0/24"},
        "palisade_endpoints": [
            {"name": "deathstar-1", "labels": {"org": "empire", "class": "deathstar"}, "ipv4": "10.1.1.10",
             "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            {"name": "tiefighter", "labels": {"org": "empire", "class": "tiefighter"}, "ipv4": "10.1.1.20"},
        ],
    },
    "node2": {
        "palisade_node": {"ipv4": "192.0.2.12", "pod_cidr": "10.1.2.0/24"},
        "palisade_endpoints": [{"name": "deathstar-2", "labels": {"org": "empire"}, "ipv4": "10.1.2.10"}],
    },
    "node3": {
        "palisade_node": {"ipv4": "192.0.2.13"},
        "palisade_endpoints": [
            {"name": "xwing", "labels": {"org": "alliance"}, "ipv4": "10.1.3.10"},
            {"name": "ywing", "namespace": "rebels", "ipv4": "10.1.3.11"},
        ],
    },
    "controller": {},  # not a palisade node: ignored
}


def broken(mutate):
    inv = copy.deepcopy(DEMO)
    mutate(inv)
    with pytest.raises(InventoryError) as err:
        load_fleet(inv)
    return str(err.value)


def test_demo_loads_with_defaults():
    model = load_fleet(DEMO)
    assert sorted(model["nodes"]) == ["node1", "node2", "node3"]
    ep = model["nodes"]["node1"]["endpoints"][0]
    assert ep["namespace"] == "default"
    assert ep["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    assert model["namespaces"]["rebels"]["labels"] == {"kubernetes.io/metadata.name": "rebels"}


def test_namespace_labels_get_the_metadata_name_label():
    model = load_fleet(DEMO, {"x": {"labels": {"ns": "x"}}})
    assert model["namespaces"]["x"]["labels"] == {"ns": "x", "kubernetes.io/metadata.name": "x"}


def test_routes_use_pod_cidr_or_per_endpoint_host_routes():
    shares = fleet.host_shares(load_fleet(DEMO))
    assert shares["node1"]["routes"] == [
        {"dst": "10.1.2.0/24", "gateway": "192.0.2.12"},
        {"dst": "10.1.3.10/32", "gateway": "192.0.2.13"},
        {"dst": "10.1.3.11/32", "gateway": "192.0.2.13"},
    ]
    assert shares["node3"]["routes"] == [
        {"dst": "10.1.1.0/24", "gateway": "192.0.2.11"},
        {"dst": "10.1.2.0/24", "gateway": "192.0.2.12"},
    ]


def test_share_holds_only_own_endpoints_with_derived_netns():
    share = fleet.host_shares(load_fleet(DEMO), {"node3": "lab7"})["node3"]
    assert [e["name"] for e in share["endpoints"]] == ["xwing", "ywing"]
    assert share["endpoints"][1]["netns"] == "lab7-e-rebels-ywing"


BAD_INVENTORIES = [
    (lambda i: i["node1"]["palisade_endpoints"][0].pop("ipv4"),
     "inventory host 'node1': palisade_endpoints[0] (default/deathstar-1): ipv4: is required"),
    (lambda i: i["node1"]["palisade_endpoints"][1].update(ipv4="10.1.1.300"),
     "inventory host 'node1': palisade_endpoints[1] (default/tiefighter): ipv4: '10.1.1.300' is not an IPv4 address"),
    (lambda i: i["node1"]["palisade_endpoints"][1].update(ipv4="10.1.9.20"),
     "ipv4: 10.1.9.20 lies outside the host's pod_cidr 10.1.1.0/24"),
    (lambda i: i["node2"]["palisade_endpoints"][0].update(name="tiefighter", ipv4="10.1.2.20"),
     "inventory host 'node2': palisade_endpoints[0] (default/tiefighter): name: endpoint default/tiefighter is also declared on host 'node1'"),
    (lambda i: i["node3"]["palisade_endpoints"][0].update(ipv4="10.1.1.99"),
     "lies inside the pod_cidr 10.1.1.0/24 of host 'node1'"),
    (lambda i: i["node3"]["palisade_endpoints"][1].update(ipv4="10.1.3.10"),
     "(rebels/ywing): ipv4: 10.1.3.10 is also the address of endpoint default/xwing"),
    (lambda i: i["node2"]["palisade_node"].update(pod_cidr="10.1.2.0/33"),
     "inventory host 'node2': palisade_node.pod_cidr: '10.1.2.0/33' is not a valid IPv4 CIDR"),
    (lambda i: i["node2"]["palisade_node"].update(pod_cidr="10.1.0.0/16"),
     "palisade_node.pod_cidr: 10.1.0.0/16 overlaps the pod_cidr 10.1.1.0/24 of host 'node1'"),
    (lambda i: i["node2"]["palisade_node"].pop("ipv4"), "inventory host 'node2': palisade_node.ipv4: is required"),
    (lambda i: i["node2"]["palisade_node"].update(ipv4="192.0.2.11"),
     "palisade_node.ipv4: 192.0.2.11 is also the address of host 'node1'"),
    (lambda i: i["node1"]["palisade_endpoints"][0].update(interface="a-very-long-ifname0"),
     "(default/deathstar-1): interface: 'a-very-long-ifname0' is not a valid interface name (at most 15 characters"),
    (lambda i: i["node1"]["palisade_endpoints"][0].update(colour="red"),
     "(default/deathstar-1): endpoint: unknown key(s) colour"),
    (lambda i: i["node1"]["palisade_node"].update(mtu=1500), "inventory host 'node1': palisade_node: unknown key(s) mtu"),
    (lambda i: i["node1"]["palisade_endpoints"][0]["ports"].append({"port": 70000}),
     "(default/deathstar-1): ports[1].port: must be an integer from 1 to 65535, got 70000"),
    (lambda i: i["node1"]["palisade_endpoints"][0]["ports"].append({"port": 81, "protocol": "ICMP"}),
     "ports[1].protocol: must be one of TCP|UDP|SCTP, got 'ICMP'"),
    (lambda i: i["node1"]["palisade_endpoints"][0]["ports"].append({"name": "http", "port": 81}),
     "ports[1].name: duplicate port name 'http'"),
    (lambda i: i["node1"]["palisade_endpoints"][0].update(labels={"bad key!": "x"}),
     "(default/deathstar-1): labels.bad key!: 'bad key!' is not a valid label key (the name must be"),
    (lambda i: i["node1"]["palisade_endpoints"][0].update(labels={"app": "web\n"}),
     "(default/deathstar-1): labels.app: 'web\\n' is not a valid label value"),
    # Kubernetes' port-name rule (the one named ports in policies are held to): a letter, no '--'.
    (lambda i: i["node1"]["palisade_endpoints"][0]["ports"].append({"name": "http--alt", "port": 81}),
     "ports[1].name: 'http--alt' is not a valid port name (IANA service name"),
    (lambda i: i["node1"]["palisade_endpoints"][0]["ports"].append({"name": "8-1", "port": 81}),
     "ports[1].name: '8-1' is not a valid port name"),
    (lambda i: i["node1"]["palisade_endpoints"][0].update(name="Deathstar"),
     "palisade_endpoints[0]: name: is required and must be a DNS-1123 name"),
    (lambda i: i["node1"]["palisade_endpoints"][1].update(interface="lxc0", ipv4="10.1.1.21") or
     i["node1"]["palisade_endpoints"][0].update(interface="lxc0"),
     "interface: interface lxc0 is also used by endpoint default/deathstar-1 on this host"),
    (lambda i: i["controller"].update(palisade_endpoints=[{"name": "x", "ipv4": "10.9.9.9"}]),
     "inventory host 'controller': palisade_node: is required on a host that declares palisade_endpoints"),
    (lambda i: i["node1"].update(palisade_endpoints={"name": "x"}), "inventory host 'node1': palisade_endpoints: must be a list"),
]


@pytest.mark.parametrize("mutate, expected", BAD_INVENTORIES)
def test_bad_inventory_names_host_endpoint_and_field(mutate, expected):
    assert expected in broken(mutate)


def test_bad_namespace_declaration():
    with pytest.raises(InventoryError, match=r"palisade_namespaces\.x: unknown key\(s\) label; allowed: labels"):
        load_fleet(DEMO, {"x": {"label": {}}})


def test_derived_names_fit_interface_limits():
    for i in range(2000):
        ep = {"name": "endpoint-%d" % i, "namespace": "ns%d" % (i % 7)}
        assert len(naming.endpoint_ifname(ep)) <= naming.IFNAME_MAX
        mac, host_mac = naming.endpoint_macs(ep)
        assert len(mac.split(":")) == 6 and int(mac[:2], 16) & 0x02 and not int(mac[:2], 16) & 0x01
        assert mac != host_mac


# --- the model cache: only changed hosts are validated again ------------------

# Fleet-wide conflicts a changed host can bring in from either side.
FLEET_WIDE = [
    lambda i: i["node3"]["palisade_node"].update(ipv4="10.1.2.10"),            # node address = another's endpoint
    lambda i: i.update(node4={"palisade_node": {"ipv4": "192.0.2.14", "pod_cidr": "10.1.3.0/25"}}),  # holds node3's
    lambda i: i["node3"]["palisade_node"].update(ipv4="192.0.2.12"),           # node address taken
    lambda i: i["node3"]["palisade_endpoints"][1].update(ipv4="192.0.2.12"),   # endpoint address = another node's
    lambda i: i["node2"]["palisade_endpoints"][0].update(name="xwing", ipv4="10.1.2.20"),
    lambda i: i["node2"]["palisade_endpoints"][0].update(name="ywing", namespace="rebels"),
    lambda i: i.update(node4={"palisade_node": {"ipv4": "192.0.2.14"},
                              "palisade_endpoints": [{"name": "awing", "ipv4": "10.1.3.11"}]}),
    lambda i: i.update(node4={"palisade_node": {"ipv4": "192.0.2.14", "pod_cidr": "10.1.0.0/20"}}),
    lambda i: i["node3"]["palisade_endpoints"].append({"name": "bwing", "ipv4": "10.1.3.12"}),  # valid
    lambda i: i.pop("node2"),                                                 # valid
]


def _outcome(inventory, cache=None):
    try:
        return load_fleet(copy.deepcopy(inventory), {"x": {"labels": {"a": "b"}}}, cache=cache)
    except InventoryError as exc:
        return "error: %s" % exc


@pytest.mark.parametrize("mutate", [m for m, dummy in BAD_INVENTORIES] + FLEET_WIDE)
def test_model_cache_gives_what_a_full_validation_gives(mutate):
    cache = ModelCache()
    assert _outcome(DEMO, cache) == _outcome(DEMO) and sorted(cache.revalidated) == ["node1", "node2", "node3"]
    inventory = copy.deepcopy(DEMO)
    mutate(inventory)
    assert _outcome(inventory, cache) == _outcome(inventory)        # the same model, or the same error
    # A failed load leaves the cache at the last valid fleet; both still agree.
    assert _outcome(DEMO, cache) == _outcome(DEMO)
    assert _outcome(inventory, cache) == _outcome(inventory)


def test_model_cache_validates_only_changed_hosts():
    cache = ModelCache()
    load_fleet(copy.deepcopy(DEMO), cache=cache)
    assert cache.changed
    again = load_fleet(copy.deepcopy(DEMO), cache=cache)
    assert cache.revalidated == [] and not cache.changed and again == load_fleet(DEMO)
    inventory = copy.deepcopy(DEMO)
    inventory["node2"]["palisade_endpoints"][0]["labels"]["org"] = "rebels"
    changed = load_fleet(inventory, cache=cache)
    assert cache.revalidated == ["node2"] and cache.changed and changed == load_fleet(inventory)
    # An unchanged host's record is the cached one, not a new validation.
    assert changed["nodes"]["node1"] is again["nodes"]["node1"]


def test_model_cache_survives_the_persistent_cache(tmp_path):
    cache = engine.PersistentCache(str(tmp_path), "demo")
    first = load_fleet(copy.deepcopy(DEMO), cache=cache.model_cache())
    cache.save()
    stored = engine.PersistentCache(str(tmp_path), "demo")
    second = load_fleet(copy.deepcopy(DEMO), cache=stored.model_cache())
    assert stored.model.revalidated == [] and second == first
    inventory = copy.deepcopy(DEMO)
    inventory["node3"]["palisade_endpoints"][0]["ipv4"] = "10.1.3.99"
    third = load_fleet(inventory, cache=stored.model_cache())
    stored.save()
    assert third == load_fleet(inventory)
    again = engine.PersistentCache(str(tmp_path), "demo")
    assert load_fleet(copy.deepcopy(inventory), cache=again.model_cache()) == third
    assert again.model.revalidated == []
    (tmp_path / "fleet-model-demo.pickle").write_bytes(b"damaged")
    damaged = engine.PersistentCache(str(tmp_path), "demo")
    assert load_fleet(copy.deepcopy(inventory), cache=damaged.model_cache()) == third
    assert damaged.model.revalidated == ["node1", "node2", "node3"]
    # Records made by other code (another version of the collection) are not used.
    damaged.save()
    stored_data = pickle.loads((tmp_path / "fleet-model-demo.pickle").read_bytes())
    assert len(stored_data["hosts"]) == 3
    stored_data["code"] = "other"
    (tmp_path / "fleet-model-demo.pickle").write_bytes(pickle.dumps(stored_data))
    other = engine.PersistentCache(str(tmp_path), "demo")
    assert load_fleet(copy.deepcopy(inventory), cache=other.model_cache()) == third
    assert other.model.revalidated == ["node1", "node2", "node3"]
