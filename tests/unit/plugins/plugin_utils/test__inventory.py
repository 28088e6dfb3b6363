"""The one reader of the inventory (plugin_utils/_inventory.py): what it
reads from hostvars and the task's variables, and that it asks Ansible for
each host's variables once."""

import pytest

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _inventory as inventory_mod
from ansible_collections.palisade.ebpf.plugins.plugin_utils._inventory import Endpoint, Inventory
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir

HOSTVARS = {
    "n1": {"palisade_node": {"ipv4": "192.0.2.1"}, "palisade_lab_prefix": "lab1",
           "palisade_endpoints": [
               {"name": "a", "ipv4": "10.0.1.1",
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"port": 8080}]},
               {"name": "b", "namespace": "x", "ipv4": "10.0.1.2"},
               "not a mapping",
               {"ipv4": "10.0.1.3"}]},
    "n2": {"palisade_node": {"ipv4": "192.0.2.2"}, "palisade_endpoints": [{"name": "c", "ipv4": "10.0.2.1"}]},
    "other": {"palisade_endpoints": None},
}


class CountingHostvars(dict):
    """Ansible's hostvars gathers a host's variables anew on every lookup."""

    def __init__(self, data):
        super().__init__(data)
        self.lookups = []

    def __getitem__(self, host):
        self.lookups.append(host)
        return super().__getitem__(host)


def test_raw_hosts_are_what_load_fleet_reads_and_nothing_else():
    inventory = Inventory(HOSTVARS, ["n1", "n2", "other"])
    raw = inventory.raw_hosts()
    assert sorted(raw) == ["n1", "n2", "other"]
    assert raw["n2"] == {"palisade_node": {"ipv4": "192.0.2.2"}, "palisade_endpoints": [{"name": "c", "ipv4": "10.0.2.1"}]}
    assert raw["other"] == {"palisade_node": None, "palisade_endpoints": None}
    assert inventory.lab_prefixes() == {"n1": "lab1", "n2": None, "other": None}
    assert inventory.nodes() == {"n1": {"ipv4": "192.0.2.1"}, "n2": {"ipv4": "192.0.2.2"}}


def test_endpoints_carry_their_host_and_key():
    inventory = Inventory(HOSTVARS, ["n1", "n2", "other"])
    assert [(e.host, e.key) for e in inventory.endpoints()] == [
        ("n1", "default/a"), ("n1", "x/b"), ("n1", None), ("n2", "default/c")]
    (c,) = inventory.endpoints("n2")
    assert c == Endpoint("n2", "default/c", {"name": "c", "ipv4": "10.0.2.1"})
    assert inventory.endpoints("other") == []
    assert inventory.named_ports() == {"10.0.1.1": {"dns": 53}, "10.0.1.2": {}, "10.0.1.3": {}, "10.0.2.1": {}}


def test_each_hosts_variables_are_gathered_once():
    hostvars = CountingHostvars(HOSTVARS)
    inventory = Inventory(hostvars, ["n1", "n2", "other"])
    inventory.raw_hosts()
    inventory.lab_prefixes()
    inventory.endpoints()
    inventory.var("n1", "anything")
    assert sorted(hostvars.lookups) == ["n1", "n2", "other"]


class AnsibleLikeHostvars(CountingHostvars):
    """raw_get gives a host's variables as written; [host] templates them."""

    def __init__(self, data, rendered):
        super().__init__(data)
        self.rendered = rendered
        self.raw_lookups = []

    def raw_get(self, host):
        self.raw_lookups.append(host)
        return dict.__getitem__(self, host)

    def __getitem__(self, host):
        self.lookups.append(host)
        return self.rendered[host]


def test_variables_are_read_raw_and_templated_only_when_they_hold_a_template():
    templated = {"ipv4": "10.0.2.1", "labels": {"app": "{{ app_name }}"}}
    written = dict(HOSTVARS, n2={"palisade_node": {"ipv4": "192.0.2.2"}, "palisade_endpoints": [templated]})
    rendered = {"n2": {"palisade_endpoints": [{"ipv4": "10.0.2.1", "labels": {"app": "web"}}]}}
    hostvars = AnsibleLikeHostvars(written, rendered)
    inventory = Inventory(hostvars, ["n1", "n2"])
    raw = inventory.raw_hosts()
    assert raw["n1"] == {k: HOSTVARS["n1"][k] for k in ("palisade_node", "palisade_endpoints")}
    assert raw["n2"]["palisade_endpoints"] == [{"ipv4": "10.0.2.1", "labels": {"app": "web"}}]
    assert raw["n2"]["palisade_node"] == {"ipv4": "192.0.2.2"}
    assert sorted(hostvars.raw_lookups) == ["n1", "n2"] and hostvars.lookups == ["n2"]


@pytest.mark.parametrize("value, expected", [
    ("plain", False), ({"a": ["b", {"c": 1}]}, False), (None, False), (3, False),
    ("{{ x }}", True), ({"k": ["a", "{% if y %}z{% endif %}"]}, True), ({"{{ key }}": 1}, True), (["{# c #}"], True),
])
def test_a_template_is_found_anywhere_in_a_value(value, expected):
    assert inventory_mod._has_template(value) is expected  # pylint: disable=protected-access


def test_the_task_inventory_is_every_host_whatever_the_limit():
    task_vars = {"hostvars": HOSTVARS, "groups": {"all": ["n1", "n2", "other"], "ungrouped": []}}
    assert Inventory.of_task(task_vars).hosts == ["n1", "n2", "other"]
    assert Inventory.of_task(task_vars, ["n2"]).hosts == ["n2"]
    assert Inventory.of_task({}).hosts == []


def test_the_tasks_own_variables():
    task_vars = {"palisade_endpoints": [{"name": "a"}], "palisade_lab_prefix": "lab9",
                 "palisade_namespaces": {"x": {"labels": {"team": "a"}}}}
    assert inventory_mod.task_endpoints(task_vars) == [{"name": "a"}]
    assert inventory_mod.task_lab_prefix(task_vars) == "lab9"
    assert inventory_mod.namespaces(task_vars) == {"x": {"labels": {"team": "a"}}}
    assert inventory_mod.task_endpoints({}) == [] and inventory_mod.namespaces({}) is None


class Templar:
    def __init__(self):
        self.templated = []

    def template(self, value):
        self.templated.append(value)
        return value


class Loader:
    def get_basedir(self):
        return "/playbooks"


def test_policy_files_start_beside_the_inventory(tmp_path):
    inventory_file = tmp_path / "hosts.yml"
    inventory_file.write_text("all: {}\n")
    assert inventory_mod.policy_base_dir({"inventory_dir": "/inv"}, Loader()) == "/inv"
    assert inventory_mod.policy_base_dir({"ansible_inventory_sources": [str(inventory_file)]}, Loader()) == str(tmp_path)
    assert inventory_mod.policy_base_dir({"ansible_inventory_sources": [str(tmp_path)]}, Loader()) == str(tmp_path)
    assert inventory_mod.policy_base_dir({"ansible_inventory_sources": ["host1,host2"]}, Loader()) == "/playbooks"


def test_policy_documents_are_read_only_when_asked_for(tmp_path):
    (tmp_path / "p.yaml").write_text("kind: NetworkPolicy\n---\nkind: CiliumNetworkPolicy\n")
    task_vars = {"inventory_dir": str(tmp_path), "palisade_policies": [{"kind": "X"}],
                 "palisade_policy_files": ["*.yaml"]}
    templar = Templar()
    read = inventory_mod.policy_documents(task_vars, templar, Loader())
    assert templar.templated == []
    assert read() == [("palisade_policies[0]", {"kind": "X"}),
                      ("p.yaml#0", {"kind": "NetworkPolicy"}), ("p.yaml#1", {"kind": "CiliumNetworkPolicy"})]
    assert templar.templated == [[{"kind": "X"}], ["*.yaml"]]
    missing = inventory_mod.policy_documents({"inventory_dir": str(tmp_path), "palisade_policy_files": ["no-*.yaml"]},
                                             Templar(), Loader())
    with pytest.raises(ir.PolicyError, match="matches no file"):
        missing()
    assert inventory_mod.policy_documents({}, Templar(), Loader())() == []
