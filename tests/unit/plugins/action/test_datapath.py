"""The datapath action (plugins/action/datapath.py): the rendering on the
controller, and with ``fleet`` the attempts - versions and deltas first,
what the host says is stale in full after."""

import json
from pathlib import Path

import yaml

from ansible_collections.palisade.ebpf.plugins.action.datapath import ActionModule
from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.programs import source_hash
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import artifacts as dp_artifacts
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet

from tests.support import policy_harness as h
from tests.support.actions import action
from tests.support.paths import REPO

STARWARS = [d for d in yaml.safe_load_all(Path(REPO, "examples/starwars/policies/starwars.yaml").read_text()) if d]
NODES = {"node1": "192.0.2.11", "node2": "192.0.2.12"}
ENDPOINTS = [h.ep("default/deathstar", "10.1.1.10", {"org": "empire", "class": "deathstar"}),
             h.ep("default/xwing", "10.1.2.10", {"org": "alliance", "class": "xwing"}, host="node2")]


def fleet(tmp_path):
    state, dummy = _fleet.fleet_state(h.hostvars(ENDPOINTS, NODES), None, lambda: h.documents(STARWARS), {},
                                      cache_dir=str(tmp_path / "cache"))
    return json.loads(json.dumps(state))


def host_side(plugin, copies, compiled):
    """The module, as far as artifacts and the program cache go."""
    def execute_module(module_name=None, module_args=None, task_vars=None):
        plugin.executed.append(dict(module_args))
        resolved = dp_artifacts.resolve(module_args["artifacts"], copies, dp_artifacts.policy_copies(copies.directory))
        names = list(resolved.stale)
        if module_args.get("source_hash") not in compiled and not module_args.get("source"):
            names.append("program")
        if names:
            return {"changed": False, "stale": names, "missing_objects": resolved.missing}
        compiled.add(source_hash(module_args["source"]) if module_args.get("source") else module_args["source_hash"])
        resolved.keep(copies, dp_artifacts.policy_copies(copies.directory))
        return {"changed": resolved.how != {"fleet": "kept", "host": "kept"},
                "transfer": dict(resolved.how, source="source" in module_args)}
    plugin._execute_module = execute_module  # pylint: disable=protected-access


def run_task(tmp_path, state, copies, compiled, **args):
    plugin = action(ActionModule, dict({"bpffs_dir": "/sys/fs/bpf/palisade-test", "fleet": state}, **args))
    host_side(plugin, copies, compiled)
    return plugin, plugin.run(task_vars={"inventory_hostname": "node1"})


def test_a_new_host_gets_the_documents_and_the_source_on_the_second_attempt(tmp_path):
    state, copies, compiled = fleet(tmp_path), artifact.LocalCopies(str(tmp_path / "host")), set()
    plugin, result = run_task(tmp_path, state, copies, compiled)
    assert "failed" not in result, result
    assert result["transfer"]["attempts"] == 2 and result["transfer"]["fleet"] == "full" and result["transfer"]["source"]
    first, second = plugin.executed
    assert "source" not in first and "fleet" not in first and set(first["artifacts"]["fleet"]) == {"version", "deltas"}
    assert "packed" in second["artifacts"]["fleet"] and "full" in second["artifacts"]["host"] and second["source"]
    assert result["transfer"]["bytes"] == sum(len(json.dumps(a, separators=(",", ":"))) for a in plugin.executed)
    # The next run ships versions and the rendering's hash: a few hundred bytes.
    plugin, result = run_task(tmp_path, state, copies, compiled)
    assert result["transfer"]["attempts"] == 1 and result["changed"] is False
    (only,) = plugin.executed
    assert "source" not in only and only["source_hash"]
    assert len(json.dumps(only["artifacts"])) < 400


def test_direct_arguments_and_fleet_do_not_mix(tmp_path):
    state, copies = fleet(tmp_path), artifact.LocalCopies(str(tmp_path / "host"))
    plugin, result = run_task(tmp_path, state, copies, set(), ipcache=[["10.0.0.1/32", 300]])
    assert result["failed"] and result["msg"] == "fleet replaces ipcache: give one or the other"
    assert plugin.executed == []


def test_a_host_not_in_the_result_is_an_error(tmp_path):
    state = fleet(tmp_path)
    del state["hosts"]["node1"]
    plugin, result = run_task(tmp_path, state, artifact.LocalCopies(str(tmp_path / "host")), set())
    assert result["failed"] and result["msg"] == "fleet: node1 is not a host of this fleet_state result"
    assert plugin.executed == []


def test_a_host_that_stays_stale_fails_instead_of_looping(tmp_path):
    plugin = action(ActionModule, {"bpffs_dir": "/sys/fs/bpf/palisade-test", "fleet": fleet(tmp_path)},
                    module_result={"changed": False, "stale": ["fleet"], "msg": "disk full"})
    result = plugin.run(task_vars={"inventory_hostname": "node1"})
    assert result["failed"] and "could not build its state even from full documents: disk full" in result["msg"]
    assert len(plugin.executed) == 2
