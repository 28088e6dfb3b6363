"""The policy_trace action (plugins/action/policy_trace.py): verdicts from
the inventory or from what-if inputs, errors as one message."""

import pytest

from ansible_collections.palisade.ebpf.plugins.action.policy_trace import ActionModule

from tests.support.actions import action
from tests.support.sample_inventory import HOSTS, HOSTVARS

DENY_ALL_TO_C = [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"name": "deny", "namespace": "default"},
                  "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def task_vars(**extra):
    return dict({"hostvars": HOSTVARS, "groups": {"all": HOSTS}, "inventory_dir": "/inventory"}, **extra)


def test_verdicts_from_the_inventorys_policies():
    probes = [{"from": "x/b", "to": "default/c", "port": 80}]
    result = action(ActionModule, {"probes": probes}).run(task_vars=task_vars())
    assert result["changed"] is False and [r["verdict"] for r in result["results"]] == ["allow"]
    result = action(ActionModule, {"probes": probes}).run(task_vars=task_vars(palisade_policies=DENY_ALL_TO_C))
    assert [r["verdict"] for r in result["results"]] == ["deny"]


def test_what_if_policies_replace_the_inventorys():
    probes = [{"from": "x/b", "to": "default/c", "port": 80}]
    result = action(ActionModule, {"probes": probes, "policies": DENY_ALL_TO_C}).run(task_vars=task_vars())
    assert [r["verdict"] for r in result["results"]] == ["deny"]


@pytest.mark.parametrize("args, message", [
    ({}, "probes: required"),
    ({"probes": [{"from": "x/nobody", "to": "default/c", "port": 80}]}, "probes[0].from: "),
    ({"probes": [], "endpoints": "n1"}, "endpoints: must be a list"),
])
def test_errors_are_one_message(args, message):
    result = action(ActionModule, args).run(task_vars=task_vars())
    assert result["failed"] is True and result["msg"].startswith(message), result["msg"]
