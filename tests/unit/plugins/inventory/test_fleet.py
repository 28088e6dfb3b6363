"""The palisade.ebpf.fleet inventory plugin (plugins/inventory/fleet.py) and
the fleet file it reads (plugin_utils/_fleet_file.py), through Ansible's own
InventoryManager, VariableManager and hostvars: the hosts, groups and small
variables become Ansible's, the endpoints are read from the file by the
collection's inventory reader."""

import json

import pytest
from ansible.errors import AnsibleParserError
from ansible.parsing.dataloader import DataLoader
from ansible.inventory import manager as inventory_manager
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.plugins.loader import inventory_loader
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet_file as fleet_file
from ansible_collections.palisade.ebpf.plugins.plugin_utils._inventory import Inventory, task_endpoints

WEB = {"name": "web", "ipv4": "10.0.1.10", "labels": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}
DB = {"name": "db", "namespace": "data", "ipv4": "10.0.2.10", "labels": {"app": "db", "note": "{{ not_a_template }}"}}
FLEET = {
    "plugin": "palisade.ebpf.fleet",
    "vars": {"palisade_policy_files": ["policies/*.yaml"]},
    "groups": {"palisade_nodes": ["n1", "n2"], "edge": ["n1"]},
    "hosts": {
        "n1": {"ansible_host": "192.0.2.1", "palisade_node": {"ipv4": "192.0.2.1"}, "palisade_endpoints": [WEB]},
        "n2": {"palisade_node": {"ipv4": "192.0.2.2"}, "palisade_endpoints": [DB]},
        "controller": {"ansible_connection": "local"},
    },
}


@pytest.fixture(autouse=True)
def fleet_plugin_enabled(monkeypatch):
    """As docs/examples/ansible-large-fleet.cfg configures Ansible; a source
    no plugin parses is an error, not a warning."""
    monkeypatch.setattr(inventory_manager.C, "INVENTORY_ENABLED", ["palisade.ebpf.fleet", "host_list"])
    monkeypatch.setattr(inventory_manager.C, "INVENTORY_UNPARSED_IS_FAILED", True)


def load(tmp_path, data=None, name="site.fleet.json"):
    path = tmp_path / name
    path.write_text(json.dumps(FLEET if data is None else data))
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(path)])
    return path, inventory, VariableManager(loader=loader, inventory=inventory)


def test_hosts_groups_and_small_variables_become_ansibles(tmp_path):
    path, inventory, variables = load(tmp_path)
    assert sorted(h.name for h in inventory.get_hosts()) == ["controller", "n1", "n2"]
    assert sorted(h.name for h in inventory.get_hosts("edge")) == ["n1"]
    n1 = variables.get_vars(host=inventory.get_host("n1"))
    assert n1["ansible_host"] == "192.0.2.1" and n1["palisade_node"] == {"ipv4": "192.0.2.1"}
    assert n1["palisade_policy_files"] == ["policies/*.yaml"]
    # The bulk stays in the file; Ansible gets its path.
    assert "palisade_endpoints" not in n1 and n1["palisade_fleet_file"] == str(path)


def test_the_inventory_reader_takes_endpoints_from_the_file(tmp_path):
    dummy, inventory, variables = load(tmp_path)
    hostvars = HostVars(inventory=inventory, variable_manager=variables, loader=DataLoader())
    reader = Inventory(hostvars, ["n1", "n2", "controller"])
    assert reader.raw_hosts() == {
        "n1": {"palisade_node": {"ipv4": "192.0.2.1"}, "palisade_endpoints": [WEB]},
        "n2": {"palisade_node": {"ipv4": "192.0.2.2"}, "palisade_endpoints": [DB]},  # data, never templated
        "controller": {"palisade_node": None, "palisade_endpoints": None},
    }
    assert [e.key for e in reader.endpoints()] == ["default/web", "data/db"]
    task_vars = variables.get_vars(host=inventory.get_host("n2"))
    assert task_endpoints(task_vars) == [DB]


@pytest.mark.parametrize("data, message", [
    ({"plugin": "other"}, "plugin: must be palisade.ebpf.fleet"),
    (dict(FLEET, hosts=["n1"]), "hosts: must be a mapping"),
    (dict(FLEET, hosts={"n1": ["x"]}), "hosts.n1: must be a mapping of variables"),
    (dict(FLEET, groups={"edge": "n1"}), "groups.edge: must be a list of host names"),
    (dict(FLEET, groups={"edge": ["n9"]}), "groups.edge: n9 not in hosts"),
])
def test_a_bad_fleet_file_is_one_message_naming_the_file_and_field(tmp_path, data, message):
    path = tmp_path / "bad.fleet.json"
    path.write_text(json.dumps(data))
    with pytest.raises(fleet_file.FleetFileError, match="^%s: %s" % (path, message)):
        fleet_file.read(str(path))
    plugin = inventory_loader.get("palisade.ebpf.fleet")
    assert plugin.verify_file(str(path))
    with pytest.raises(AnsibleParserError, match=message):
        plugin.parse(InventoryData(), DataLoader(), str(path))


def test_yaml_fleet_files_are_read_too_and_a_changed_file_is_read_again(tmp_path):
    path = tmp_path / "site.fleet.yml"
    path.write_text("plugin: palisade.ebpf.fleet\nhosts:\n  n1:\n    palisade_endpoints: [{name: a, ipv4: 10.0.0.1}]\n")
    assert fleet_file.host_var(str(path), "n1", "palisade_endpoints") == [{"name": "a", "ipv4": "10.0.0.1"}]
    path.write_text("plugin: palisade.ebpf.fleet\nhosts:\n  n1:\n    palisade_endpoints: [{name: bb, ipv4: 10.0.0.2}]\n")
    assert fleet_file.host_var(str(path), "n1", "palisade_endpoints") == [{"name": "bb", "ipv4": "10.0.0.2"}]
    assert fleet_file.host_var(str(path), "n9", "palisade_endpoints") is None
