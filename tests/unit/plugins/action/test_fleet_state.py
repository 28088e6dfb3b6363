"""The fleet_state action (plugins/action/fleet_state.py): the inventory in,
the registered result or one error message out, warnings shown."""

import os

from ansible_collections.palisade.ebpf.plugins.action import fleet_state
from ansible_collections.palisade.ebpf.plugins.action.fleet_state import ActionModule
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet
from ansible_collections.palisade.ebpf.plugins.plugin_utils._inventory import Inventory

from tests.support.actions import action
from tests.support.sample_inventory import HOSTS, HOSTVARS


def task_vars(hostvars=None, **extra):
    return dict({"hostvars": hostvars or HOSTVARS, "groups": {"all": HOSTS}, "inventory_dir": "/inventory"}, **extra)


def test_the_result_names_every_hosts_share_in_the_store(tmp_path):
    result = action(ActionModule, {"cache_dir": str(tmp_path)}).run(task_vars=task_vars())
    assert result["changed"] is False and "failed" not in result
    assert sorted(result["hosts"]) == ["n1", "n2"]
    assert result["summary"]["endpoints"] == 3 and result["summary"]["policy_computation"] == "full"
    assert result["store"].startswith(str(tmp_path) + "/shares-")
    assert os.path.isfile(os.path.join(result["store"], result["hosts"]["n1"]["share"] + ".json"))


def test_hosts_limit_the_fleet(tmp_path):
    result = action(ActionModule, {"hosts": ["n2"], "cache": False, "cache_dir": str(tmp_path)}).run(task_vars=task_vars())
    assert sorted(result["hosts"]) == ["n2"]


def test_bad_input_fails_with_one_message():
    broken = dict(HOSTVARS, n2={"palisade_node": {"ipv4": "192.0.2.1"}})
    result = action(ActionModule, {"cache": False}).run(task_vars=task_vars(broken))
    assert result["failed"] is True
    assert result["msg"].startswith("invalid inventory: inventory host 'n2': palisade_node.ipv4: 192.0.2.1 is also")
    result = action(ActionModule, {"cache": False}).run(task_vars=task_vars(palisade_policies="not a list"))
    assert result["failed"] is True and result["msg"].startswith("palisade_policies: value: must be a list")


def test_warnings_are_shown(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(fleet_state.display, "warning", shown.append)
    for kind in ("fleet-model", "policy-rules", "policy-state"):  # the cache cannot be written, the store can
        (tmp_path / ("%s-%s.pickle" % (kind, _fleet.cache_name(Inventory(HOSTVARS, HOSTS).raw_hosts()))) / "blocker").mkdir(parents=True)
    result = action(ActionModule, {"cache_dir": str(tmp_path)}).run(task_vars=task_vars())
    assert "failed" not in result
    assert len(shown) == 1 and shown[0].startswith("palisade.ebpf.fleet_state: cannot write the policy cache in ")
