"""lab_inputs (plugins/filter/lab.py): the inventory in palisade.ebpf.lab's terms."""

from ansible_collections.palisade.ebpf.plugins.filter.lab import FilterModule, lab_inputs

from tests.support.sample_inventory import HOSTS, HOSTVARS


def test_lab_inputs_maps_transport_and_ports():
    inputs = lab_inputs(HOSTVARS, HOSTS, "ssh")
    assert inputs["hosts"] == [{"name": "n1", "ipv4": "192.0.2.1", "ssh": False},
                               {"name": "n2", "ipv4": "192.0.2.2", "ssh": True}]
    assert inputs["endpoints"][0] == {"host": "n1", "name": "a", "namespace": "default",
                                      "ports": [{"port": 53, "protocol": "UDP"}]}
    assert inputs["endpoints"][1]["netns"] == "custom"
    assert [e["name"] for e in inputs["endpoints"]] == ["a", "b", "c"]


def test_a_host_reached_by_another_default_transport_gets_no_sshd():
    inputs = lab_inputs(HOSTVARS, ["n2"], "palisade.ebpf.netns")
    assert inputs["hosts"] == [{"name": "n2", "ipv4": "192.0.2.2", "ssh": False}]


def test_registered_name():
    assert FilterModule().filters() == {"lab_inputs": lab_inputs}
