"""The probe action (plugins/action/probe.py): named ports resolved from the
whole inventory, and the host's own endpoints and lab prefix filled in."""

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.palisade.ebpf.plugins.action.probe import ActionModule, resolve_named_ports

from tests.support.actions import action
from tests.support.sample_inventory import HOSTS, HOSTVARS

TASK_VARS = {"hostvars": HOSTVARS, "groups": {"all": HOSTS}, "palisade_lab_prefix": "lab3",
             "palisade_endpoints": HOSTVARS["n2"]["palisade_endpoints"]}


def test_named_ports_become_numbers_and_the_hosts_endpoints_are_filled_in():
    plugin = action(ActionModule, {"probes": [{"from": "c", "to": "10.0.1.2", "port": "web"},
                                              {"from": "c", "to": "10.0.1.1", "port": "53", "protocol": "UDP"}]},
                    {"changed": False, "results": []})
    result = plugin.run(task_vars=TASK_VARS)
    assert result["results"] == []
    ((name, args),) = plugin.executed
    assert name == "palisade.ebpf.probe"
    assert args["probes"] == [{"from": "c", "to": "10.0.1.2", "port": 8080},
                              {"from": "c", "to": "10.0.1.1", "port": "53", "protocol": "UDP"}]
    assert args["endpoints"] == [{"name": "c", "namespace": None, "netns": None}]
    assert args["lab_prefix"] == "lab3"


def test_an_unknown_port_name_fails_naming_the_probe():
    plugin = action(ActionModule, {"probes": [{"from": "c", "to": "10.0.1.1", "port": "web"}]})
    with pytest.raises(AnsibleActionFail, match=r"probes\[0\]\.port: no endpoint at 10\.0\.1\.1 declares a port named 'web'"):
        plugin.run(task_vars=TASK_VARS)
    assert plugin.executed == []


def test_the_inventory_is_read_only_when_a_port_has_a_name():
    asked = []
    probes = [{"from": "a", "to": "10.0.2.1", "port": 80}]
    assert resolve_named_ports(probes, lambda: asked.append(1) or {}) == probes
    assert asked == []
