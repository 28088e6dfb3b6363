"""The controller's one computation (plugin_utils/_fleet.py): what
fleet_state registers, what policy_trace answers, their errors, and the
persistent cache they share."""

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import unpack_ipcache
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet, _want
from ansible_collections.palisade.ebpf.plugins.plugin_utils._inventory import Inventory
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine
from ansible_collections.palisade.ebpf.plugins.plugin_utils._store import ShareStore, StoreError

from tests.support import policy_harness as h
from tests.support.paths import REPO

STARWARS = [d for d in yaml.safe_load_all(Path(REPO, "examples/starwars/policies/starwars.yaml").read_text()) if d]
ENDPOINTS = [
    h.ep("default/deathstar", "10.1.1.10", {"org": "empire", "class": "deathstar"}, ports=[{"name": "http", "port": 80}]),
    h.ep("default/tiefighter", "10.1.1.20", {"org": "empire", "class": "tiefighter"}),
    h.ep("default/xwing", "10.1.2.10", {"org": "alliance", "class": "xwing"}, host="node2"),
]
NODES = {"node1": "192.0.2.11", "node2": "192.0.2.12"}


def raw_hosts(endpoints=None):
    raw = h.hostvars(ENDPOINTS if endpoints is None else endpoints, NODES)
    raw["controller"] = {"palisade_node": None, "palisade_endpoints": None}  # not a palisade node
    return raw


def documents(policies=None):
    return lambda: h.documents(STARWARS if policies is None else policies)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The default cache directory of this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "palisade"


def test_fleet_state_result_names_shares_and_fleet_objects_in_the_store(tmp_path):
    state, warnings = _fleet.fleet_state(raw_hosts(), None, documents(), {"node1": "lab1"}, cache_dir=str(tmp_path))
    assert warnings == []
    assert sorted(state) == ["hosts", "objects", "store", "summary"]
    assert sorted(state["hosts"]) == ["node1", "node2"]
    assert state["hosts"]["node1"]["endpoints"] == 2
    store = ShareStore(state["store"])
    node1 = store.get(state["hosts"]["node1"]["share"])
    assert sorted(node1) == ["endpoints", "enforcement", "ipcache_overrides", "l7proxy", "node", "policies"]
    assert node1["endpoints"][0]["netns"] == "lab1-e-default-deathstar"
    assert node1["ipcache_overrides"] == {"192.0.2.11/32": 1}
    # Each policy is an object of its own, named by the share under its reference.
    (ref,) = {ep["policy"] for ep in node1["enforcement"][:1]}
    assert sorted(store.get(node1["policies"][ref])) == ["egress", "ingress"]
    # The landing rule redirects to the deathstar's proxy; the xwing's host has nothing to proxy.
    assert list(node1["l7proxy"]["endpoints"]) == ["10.1.1.10"] and node1["l7proxy"]["rulesets"]
    assert store.get(state["hosts"]["node2"]["share"])["l7proxy"] == {"endpoints": {}, "rules": {}, "rulesets": []}
    assert (state["hosts"]["node1"]["l7proxy"], state["hosts"]["node2"]["l7proxy"]) == ("some", "none")
    table = dict(unpack_ipcache(store.get(state["objects"]["ipcache_packed"])))
    assert table["192.0.2.11/32"] == table["192.0.2.12/32"] == 6 and table["0.0.0.0/0"] == 2
    deathstar = node1["enforcement"][0]["identity"]
    identities = store.get(state["objects"]["identities"])
    assert table["10.1.1.10/32"] == deathstar and "k8s:class=deathstar" in identities[str(deathstar)]
    # Nodes without a pod_cidr are reached through a /32 per endpoint.
    assert store.get(state["objects"]["routes"]) == [
        ["node1", [{"dst": "10.1.1.10/32", "gateway": "192.0.2.11"}, {"dst": "10.1.1.20/32", "gateway": "192.0.2.11"}]],
        ["node2", [{"dst": "10.1.2.10/32", "gateway": "192.0.2.12"}]]]
    # The fleet table as the artifact hosts keep: versioned by its content, no earlier version yet.
    assert store.get(state["objects"]["fleet_table"]) == {"ipcache": table}
    assert state["objects"]["fleet_table"] == artifact.version({"ipcache": table})
    assert state["objects"]["fleet_table_deltas"] == {}
    # Each host's own datapath artifact: endpoints by key, the policies they use, its own rows.
    (document,) = state["hosts"]["node1"]["datapath"]
    own = store.get(document)
    assert sorted(own) == ["endpoints", "identities", "overrides", "policies"]
    assert sorted(own["endpoints"]) == ["default/deathstar", "default/tiefighter"]
    assert own["endpoints"]["default/deathstar"]["ipv4"] == "10.1.1.10"
    assert own["overrides"] == {"192.0.2.11/32": 1} and str(deathstar) in own["identities"]
    # ... naming each policy's flat rows, an object shared by the hosts that use it.
    assert store.get(own["policies"][ref]) == _want.flat_policy(store.get(node1["policies"][ref]))
    assert state["summary"] == {"nodes": 2, "endpoints": 3, "namespaces": ["default"], "rules": 1, "identities": 3,
                                "policy_computation": "full", "objects_written": 12}
    json.dumps(state)  # plain data, as Ansible registers it


def test_an_unchanged_fleet_writes_no_object_and_old_runs_objects_go(tmp_path):
    first, dummy = _fleet.fleet_state(raw_hosts(), None, documents(), {}, cache_dir=str(tmp_path))
    again, dummy = _fleet.fleet_state(raw_hosts(), None, documents(), {}, cache_dir=str(tmp_path))
    assert again["hosts"] == first["hosts"] and again["summary"]["objects_written"] == 0
    changed = [h.ep("default/deathstar", "10.1.1.10", {"org": "empire", "class": "deathstar", "v": "2"},
                    ports=[{"name": "http", "port": 80}])] + ENDPOINTS[1:]
    second, dummy = _fleet.fleet_state(raw_hosts(changed), None, documents(), {}, cache_dir=str(tmp_path))
    assert second["hosts"]["node1"]["share"] != first["hosts"]["node1"]["share"]
    # The xwing's host is not touched by the change: its share is reused, not rewritten.
    assert second["hosts"]["node2"]["share"] == first["hosts"]["node2"]["share"]
    assert 0 < second["summary"]["objects_written"] < first["summary"]["objects_written"]
    store = ShareStore(first["store"])
    store.get(first["hosts"]["node1"]["share"])  # the previous run's objects stay for one more run
    third, dummy = _fleet.fleet_state(raw_hosts(changed), None, documents(), {}, cache_dir=str(tmp_path))
    with pytest.raises(StoreError, match="is missing"):
        store.get(first["hosts"]["node1"]["share"])
    store.get(third["hosts"]["node1"]["share"])


def test_the_cache_is_named_by_the_fleets_nodes_and_the_next_run_starts_from_it(tmp_path):
    _fleet.fleet_state(raw_hosts(), None, documents(), {}, cache_dir=str(tmp_path))
    again, dummy = _fleet.fleet_state(raw_hosts(), None, documents(), {}, cache_dir=str(tmp_path))
    assert again["summary"]["policy_computation"] == "unchanged"
    names = sorted(n for n in os.listdir(tmp_path) if not n.startswith("shares-"))
    assert names == ["fleet-model-%s.pickle" % _fleet.cache_name(raw_hosts()),
                     "policy-rules-%s.pickle" % _fleet.cache_name(raw_hosts()),
                     "policy-state-%s.pickle" % _fleet.cache_name(raw_hosts())]
    # Non-node hosts do not name the cache; another set of nodes is another fleet.
    assert _fleet.cache_name(raw_hosts()) == _fleet.cache_name(h.hostvars(ENDPOINTS, NODES))
    other = h.hostvars(ENDPOINTS, dict(NODES, node3="192.0.2.13"))
    assert _fleet.cache_name(other) != _fleet.cache_name(raw_hosts())
    changed = [dict(ENDPOINTS[0], labels={"org": "empire", "class": "deathstar", "v": "2"})] + ENDPOINTS[1:]
    third, dummy = _fleet.fleet_state(raw_hosts(changed), None, documents(), {}, cache_dir=str(tmp_path))
    assert third["summary"]["policy_computation"] == "incremental"
    fresh, dummy = _fleet.fleet_state(raw_hosts(changed), None, documents(), {}, use_cache=False)
    assert fresh["summary"].pop("policy_computation") == "full"
    assert current(third) == current(fresh)


def current(state):
    """What a run's result names as current: each host's share and artifact
    version, the fleet objects (the versions earlier runs left aside)."""
    return ({h: dict(entry, datapath=entry["datapath"][0]) for h, entry in state["hosts"].items()},
            dict(state["objects"], fleet_table_deltas=None))


def block_cache_files(directory, name):
    """Directories where the cache's files go: the cache cannot be written,
    the share store beside it can."""
    for kind in ("fleet-model", "policy-rules", "policy-state"):
        (directory / ("%s-%s.pickle" % (kind, name)) / "blocker").mkdir(parents=True)


def test_a_cache_that_cannot_be_written_is_a_warning(tmp_path):
    block_cache_files(tmp_path, _fleet.cache_name(raw_hosts()))
    state, warnings = _fleet.fleet_state(raw_hosts(), None, documents(), {}, cache_dir=str(tmp_path))
    assert state["summary"]["nodes"] == 2
    assert len(warnings) == 1 and warnings[0].startswith("cannot write the policy cache in %s: " % tmp_path)


def test_a_share_store_that_cannot_be_written_fails_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(_fleet.FleetError, match="^cannot write the share store in %s/shares-" % blocker):
        _fleet.fleet_state(raw_hosts(), None, documents(), {}, cache_dir=str(blocker))


def test_policy_warnings_are_returned():
    partial = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p"},
               "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.1.1.16/28"}}]}]}}
    endpoints = ENDPOINTS + [h.ep("default/tiefighter-2", "10.1.1.99", {"org": "empire", "class": "tiefighter"})]
    dummy, warnings = _fleet.fleet_state(raw_hosts(endpoints), None, documents([partial]), {}, use_cache=False)
    assert len(warnings) == 1 and "only some endpoints of identity" in warnings[0]


def test_an_invalid_inventory_fails_before_any_policy_is_read():
    read = []
    broken = raw_hosts()
    broken["node2"]["palisade_endpoints"][0]["ipv4"] = "10.1.1.10"
    with pytest.raises(_fleet.FleetError, match="^invalid inventory: inventory host 'node2': .*10.1.1.10 is also"):
        _fleet.fleet_state(broken, None, lambda: read.append(1) or [], {}, use_cache=False)
    assert read == []


def test_an_invalid_policy_fails_with_the_parsers_message():
    bad = [{"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "x"}, "spec": {"oops": 1}}]
    with pytest.raises(_fleet.FleetError, match=r"^palisade_policies\[0\]: CiliumNetworkPolicy default/x: spec"):
        _fleet.fleet_state(raw_hosts(), None, documents(bad), {}, use_cache=False)


def test_rules_the_proxy_cannot_apply_do_not_fail_the_run():
    quoted = [{"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "q"},
               "spec": {"endpointSelector": {"matchLabels": {"class": "deathstar"}},
                        "ingress": [{"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                                  "rules": {"http": [{"headers": ["X'Ship"]}]}}]}]}}]
    state, dummy = _fleet.fleet_state(raw_hosts(), None, documents(quoted), {}, use_cache=False)
    share = ShareStore(state["store"]).get(state["hosts"]["node1"]["share"])
    assert "cannot be matched by the L7 proxy" in share["l7proxy"]["error"]
    assert state["hosts"]["node1"]["l7proxy"] == "error"
    assert "error" not in ShareStore(state["store"]).get(state["hosts"]["node2"]["share"])["l7proxy"]


# --- policy_trace -------------------------------------------------------------------

PROBES = [h.probe("default/tiefighter", "default/deathstar", "http",
                  http={"method": "POST", "path": "/v1/request-landing"}),
          h.probe("default/xwing", "10.1.1.10", 80)]


def inventory(endpoints=None):
    return Inventory(raw_hosts(endpoints), sorted(raw_hosts(endpoints)))


def test_trace_answers_from_the_inventory_and_leaves_the_cache_as_it_was(private_cache):
    _fleet.fleet_state(raw_hosts(), None, documents(), {})
    saved = {name: (private_cache / name).stat().st_mtime_ns for name in os.listdir(private_cache)}
    results = _fleet.trace(PROBES, inventory(), None, documents())
    assert [r["verdict"] for r in results] == ["allow", "deny"]
    assert {name: (private_cache / name).stat().st_mtime_ns for name in os.listdir(private_cache)} == saved


def test_trace_what_if_inputs_replace_the_inventorys_and_never_touch_the_cache(private_cache):
    what_if = {"endpoints": [dict(ENDPOINTS[1], host="node1"),
                             {"host": "elsewhere", "name": "deathstar", "ipv4": "10.9.0.1", "labels": {"class": "deathstar"}}],
               "namespaces": None, "policies": []}
    (result,) = _fleet.trace([h.probe("default/tiefighter", "default/deathstar", 80)], inventory(), None, documents(),
                             what_if)
    assert result["verdict"] == "allow"  # no policy given: nothing enforced
    assert not private_cache.exists()
    raw = _fleet.what_if_hosts(what_if["endpoints"], inventory().nodes())
    assert raw["elsewhere"]["palisade_node"] == {"ipv4": "240.0.0.1"}  # a placeholder node
    assert raw["node2"] == {"palisade_node": {"ipv4": "192.0.2.12"}, "palisade_endpoints": []}


@pytest.mark.parametrize("probes, what_if, message", [
    (None, None, "probes: required, a list of {from, to, port, protocol, http}"),
    (PROBES, {"endpoints": {"host": "node1"}}, "endpoints: must be a list of endpoints, each with a 'host'"),
    (PROBES, {"endpoints": [{"name": "a"}]}, "endpoints[0]: must be a mapping with a 'host'"),
    (PROBES, {"endpoints": [{"host": "node1", "name": "a", "ipv4": "10.1.1.10"},
                            {"host": "node1", "name": "a", "ipv4": "10.1.1.11"}]}, "invalid inventory: "),
    (PROBES, {"policies": [{"kind": "Nope"}]}, "policies[0]: "),
    ([h.probe("default/nobody", "10.1.1.10", 80)], None, "probes[0].from: "),
])
def test_trace_errors_are_one_line(probes, what_if, message):
    with pytest.raises(_fleet.FleetError, match="^" + re.escape(message)) as failure:
        _fleet.trace(probes, inventory(), None, documents(), what_if)
    assert "\n" not in str(failure.value)


def test_trace_and_fleet_state_compute_the_same_policy():
    state, dummy = _fleet.fleet_state(raw_hosts(), None, documents(), {}, use_cache=False)
    done = _fleet.compute(raw_hosts(), None, documents())
    assert isinstance(done.policy, engine.FleetPolicy) and len(done.rules) == state["summary"]["rules"]
    share = ShareStore(state["store"]).get(state["hosts"]["node1"]["share"])
    assert done.policy.host_share("node1")["endpoints"][0]["identity"] == share["enforcement"][0]["identity"]
