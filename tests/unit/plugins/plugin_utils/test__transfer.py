"""What a run ships to a host's datapath (plugins/plugin_utils/_transfer.py),
followed through the host's side (the datapath module's artifact handling)
over several runs: deltas after a change, a host that missed versions, a
damaged copy, a controller whose cache was deleted."""

import json
import random
import shutil
from pathlib import Path

import pytest
import yaml

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import unpack_ipcache
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import artifacts as dp_artifacts
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet
from ansible_collections.palisade.ebpf.plugins.plugin_utils._transfer import datapath_transfers
from ansible_collections.palisade.ebpf.plugins.plugin_utils._want import host_want

from tests.support import policy_harness as h
from tests.support.paths import REPO

STARWARS = [d for d in yaml.safe_load_all(Path(REPO, "examples/starwars/policies/starwars.yaml").read_text()) if d]
NODES = {"node1": "192.0.2.11", "node2": "192.0.2.12"}


def endpoints(xwing_class="xwing", extra=0):
    found = [
        h.ep("default/deathstar", "10.1.1.10", {"org": "empire", "class": "deathstar"}, ports=[{"name": "http", "port": 80}]),
        h.ep("default/tiefighter", "10.1.1.20", {"org": "empire", "class": "tiefighter"}),
        h.ep("default/xwing", "10.1.2.10", {"org": "alliance", "class": xwing_class}, host="node2"),
    ]
    found += [h.ep("default/ywing-%d" % i, "10.1.2.%d" % (20 + i), {"org": "alliance", "class": "ywing"}, host="node2")
              for i in range(extra)]
    return found


def run(cache_dir, **change):
    state, dummy = _fleet.fleet_state(h.hostvars(endpoints(**change), NODES), None,
                                      lambda: h.documents(STARWARS), {}, cache_dir=str(cache_dir))
    return json.loads(json.dumps(state))  # as Ansible registers it


class Host:
    """The host side of one datapath: what the module does with a transfer."""

    def __init__(self, directory):
        self.copies = artifact.LocalCopies(str(directory))
        self.objects = dp_artifacts.policy_copies(str(directory))

    def apply(self, state, name):
        """(desired state, how each artifact came, bytes sent, attempts), the
        way the action plugin and the module go about it."""
        full, objects, sent, attempts = set(), set(), 0, 0
        while True:
            transfers = datapath_transfers(state, name, full, sorted(objects))
            sent += len(json.dumps(transfers, separators=(",", ":")))
            attempts += 1
            resolved = dp_artifacts.resolve(transfers, self.copies, self.objects)
            if not resolved.stale:
                break
            assert set(resolved.stale) - {"objects"} - full or set(resolved.missing) - objects, "no progress"
            full |= set(resolved.stale) - {"objects"}
            objects |= set(resolved.missing)
        resolved.keep(self.copies, self.objects)
        return resolved.state(), resolved.how, sent, attempts


def as_wanted(state, name):
    """host_want's datapath arguments, in the form state_from gives."""
    want = host_want(state, name, "datapath")
    table = dict(unpack_ipcache(want["ipcache_packed"]))
    return {"ipcache": sorted(table.items()), "endpoints": sorted(want["endpoints"], key=lambda ep: ep["key"]),
            "policies": want["policies"], "identities": want["identities"]}


def normal(desired):
    return dict(desired, ipcache=sorted(tuple(row) for row in desired["ipcache"]))


def test_a_new_host_gets_full_documents_then_nothing_while_nothing_changes(tmp_path):
    host = Host(tmp_path / "node1")
    first = run(tmp_path / "cache")
    desired, how, sent_first, attempts = host.apply(first, "node1")
    assert how == {"fleet": "full", "host": "full"} and attempts == 2
    wanted = as_wanted(first, "node1")
    assert normal(desired) == dict(wanted, ipcache=[tuple(r) for r in wanted["ipcache"]])
    again = run(tmp_path / "cache")
    desired_again, how, sent, attempts = host.apply(again, "node1")
    assert how == {"fleet": "kept", "host": "kept"} and attempts == 1
    assert desired_again == desired
    assert sent < 400 < sent_first


def test_after_a_change_each_host_gets_a_delta_that_builds_the_full_computation(tmp_path):
    hosts = {name: Host(tmp_path / name) for name in NODES}
    state = run(tmp_path / "cache")
    for name, host in hosts.items():
        host.apply(state, name)
    changed = run(tmp_path / "cache", xwing_class="xwing-v2")  # a new identity for the xwing
    fresh, dummy = _fleet.fleet_state(h.hostvars(endpoints(xwing_class="xwing-v2"), NODES), None,
                                      lambda: h.documents(STARWARS), {}, use_cache=False, cache_dir=str(tmp_path / "fresh"))
    for name, host in hosts.items():
        desired, how, sent, attempts = host.apply(changed, name)
        assert attempts == 1 and how["fleet"] == "delta"
        assert sent < 2000, "a one-endpoint change costs %d bytes" % sent
        wanted = as_wanted(json.loads(json.dumps(fresh)), name)
        assert normal(desired) == dict(wanted, ipcache=[tuple(r) for r in wanted["ipcache"]])
    # node2 holds the xwing: its own artifact changed; node1's deathstar policy names the xwing's identity too.
    assert host_doc_version(changed, "node2") != host_doc_version(state, "node2")


def host_doc_version(state, name):
    return state["hosts"][name]["datapath"][0]


def test_a_host_that_missed_more_versions_than_kept_gets_the_full_table(tmp_path):
    behind, current = Host(tmp_path / "behind"), Host(tmp_path / "current")
    state = run(tmp_path / "cache")
    behind.apply(state, "node2")
    current.apply(state, "node2")
    for extra in range(1, _fleet.ARTIFACT_HISTORY + 1):
        state = run(tmp_path / "cache", extra=extra)
        dummy, how, dummy, dummy = current.apply(state, "node2")
        assert how == {"fleet": "delta", "host": "delta"}
    assert len(state["objects"]["fleet_table_deltas"]) == _fleet.ARTIFACT_HISTORY - 1
    desired, how, dummy, attempts = behind.apply(state, "node2")
    assert how == {"fleet": "full", "host": "full"} and attempts == 2
    assert desired == current.apply(state, "node2")[0]


def test_a_damaged_copy_is_replaced_by_a_full_document(tmp_path):
    host = Host(tmp_path / "node1")
    state = run(tmp_path / "cache")
    host.apply(state, "node1")
    (path,) = [p for p in (tmp_path / "node1").iterdir() if p.name.startswith("fleet-")]
    path.write_text(json.dumps({"ipcache": {"10.1.1.10/32": 1}}))  # someone edited it
    changed = run(tmp_path / "cache", xwing_class="xwing-v2")
    desired, how, dummy, attempts = host.apply(changed, "node1")
    assert how["fleet"] == "full" and attempts == 2
    assert dict(map(tuple, desired["ipcache"]))["10.1.1.10/32"] != 1


def test_a_deleted_controller_cache_costs_nothing_when_the_host_is_current(tmp_path):
    host = Host(tmp_path / "node2")
    host.apply(run(tmp_path / "cache"), "node2")
    shutil.rmtree(str(tmp_path / "cache"))
    state = run(tmp_path / "cache")
    assert state["objects"]["fleet_table_deltas"] == {}
    dummy, how, sent, attempts = host.apply(state, "node2")
    assert how == {"fleet": "kept", "host": "kept"} and attempts == 1 and sent < 400
    # ... and full documents when it is not (node2 holds the xwing).
    shutil.rmtree(str(tmp_path / "cache"))
    dummy, how, dummy, attempts = host.apply(run(tmp_path / "cache", xwing_class="xwing-v2"), "node2")
    assert how == {"fleet": "full", "host": "full"} and attempts == 2


def test_a_result_whose_store_is_gone_is_an_error_naming_it(tmp_path):
    state = run(tmp_path / "cache")
    shutil.rmtree(state["store"])
    with pytest.raises(ValueError, match="is missing; run palisade.ebpf.fleet_state again"):
        datapath_transfers(state, "node1", full=("fleet", "host"))


# --- property: what hosts build from deltas is a full computation's state ---------------

POLICIES = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-from-api, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: api}}]
      toPorts: [{ports: [{port: "80", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db-from-web, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web, track: stable}}]
      toPorts: [{ports: [{port: "5432", protocol: TCP}]}]
  egress:
    - toCIDR: [203.0.113.0/24]
"""
APPS = ("web", "api", "db")


def random_fleet(rng):
    endpoints = []
    for host in ("node1", "node2", "node3"):
        for i in range(rng.randrange(1, 5)):
            endpoints.append(h.ep("default/%s-%d" % (host, i), "10.%d.1.%d" % (int(host[-1]), i + 10),
                                  {"app": rng.choice(APPS), "track": rng.choice(("stable", "canary"))}, host=host))
    return endpoints


def mutate(rng, endpoints):
    """One change of the kinds a fleet sees between runs."""
    endpoints = [dict(ep, labels=dict(ep["labels"])) for ep in endpoints]
    kind = rng.choice(("labels-new", "labels-existing", "add", "remove"))
    if kind == "labels-new":
        rng.choice(endpoints)["labels"]["version"] = "v%d" % rng.randrange(1000)
    elif kind == "labels-existing":
        rng.choice(endpoints)["labels"]["app"] = rng.choice(APPS)
    elif kind == "add":
        used = {ep["ipv4"] for ep in endpoints}
        host = rng.choice(("node1", "node2", "node3"))
        address = next(a for a in ("10.%s.2.%d" % (host[-1], i) for i in range(1, 250)) if a not in used)
        endpoints.append(h.ep("default/new-%s" % address.replace(".", "-"), address, {"app": rng.choice(APPS)}, host=host))
    elif len(endpoints) > 1:
        endpoints.pop(rng.randrange(len(endpoints)))
    return endpoints


@pytest.mark.parametrize("seed", range(8))
def test_hosts_following_deltas_hold_what_a_full_computation_gives(seed, tmp_path):
    """Random change sequences; each run, a random subset of the hosts
    applies (the others miss it, some for longer than the controller keeps
    versions), and what every host that applied builds from its copies and
    the deltas equals a computation from scratch of that run's inventory."""
    rng = random.Random(seed)
    seen = set()
    endpoints = random_fleet(rng)
    nodes = {"node1": "192.0.2.11", "node2": "192.0.2.12", "node3": "192.0.2.13"}
    hosts = dict((name, Host(tmp_path / "hosts" / name)) for name in nodes)
    for step in range(10):
        state, dummy = _fleet.fleet_state(h.hostvars(endpoints, nodes), None, lambda: h.documents(POLICIES), {},
                                          cache_dir=str(tmp_path / "cache"))
        state = json.loads(json.dumps(state))
        fresh, dummy = _fleet.fleet_state(h.hostvars(endpoints, nodes), None, lambda: h.documents(POLICIES), {},
                                          use_cache=False, cache_dir=str(tmp_path / ("fresh-%d" % step)))
        fresh = json.loads(json.dumps(fresh))
        for name, host in sorted(hosts.items()):
            if rng.random() < 0.3:
                continue  # this host misses the run
            desired, how, sent, attempts = host.apply(state, name)
            seen.update(how.values())
            wanted = as_wanted(fresh, name)
            assert normal(desired) == dict(wanted, ipcache=[tuple(r) for r in wanted["ipcache"]]), \
                "seed %d step %d host %s (%s)" % (seed, step, name, how)
        endpoints = mutate(rng, endpoints)
    assert {"full", "delta"} <= seen, seen  # both paths were taken
