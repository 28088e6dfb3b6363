"""The datapath's artifacts (module_utils/_datapath/artifacts.py): the desired
state built from them, policies sent as changes to the one an endpoint used
before, and the IP table the L7 proxy reads back."""

import json

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import artifacts as dp_artifacts

OLD_POLICY = {"ingress": {"enforced": True, "entries": [[300, 6, 80, 80, "allow"], [301, 6, 80, 80, "allow"]]},
              "egress": {"enforced": False, "entries": []}}
NEW_POLICY = {"ingress": {"enforced": True, "entries": [[300, 6, 80, 80, "allow"], [302, 6, 80, 80, "redirect"]]},
              "egress": {"enforced": True, "entries": [[0, 17, 53, 53, "allow"]]}}


def host(policy_name, policy, **endpoint):
    return {"endpoints": {"default/web": dict({"key": "default/web", "ifname": "lxc1", "ipv4": "10.1.1.10",
                                               "identity": 300, "policy": policy_name}, **endpoint)},
            "policies": {policy_name: policy}, "identities": {}, "overrides": {"192.0.2.11/32": 1}}


def test_a_replaced_policy_travels_as_its_changed_rows():
    old, new = host("p-old", OLD_POLICY), host("p-new", NEW_POLICY)
    delta = artifact.diff(old, new, dp_artifacts.DERIVE)
    policies = delta["policies"]
    assert policies["set"] == {} and policies["remove"] == ["p-old"]
    assert policies["derive"] == {"p-new": {"from": "p-old", "patch": {
        "ingress": {"enforced": True, "add": [(302, 6, 80, 80, "redirect")], "remove": [(301, 6, 80, 80, "allow")]},
        "egress": {"enforced": True, "add": [(0, 17, 53, 53, "allow")], "remove": []}}}}
    # Through JSON, as it travels; the host rebuilds exactly the new version.
    patched = artifact.patch(old, json.loads(json.dumps(delta)), derived=dp_artifacts.DERIVED)
    assert patched == new and artifact.version(patched) == artifact.version(new)


def test_a_policy_no_endpoint_used_before_travels_whole():
    old = host("p-old", OLD_POLICY)
    new = host("p-new", NEW_POLICY, key="default/api")
    new["endpoints"] = {"default/api": new["endpoints"]["default/web"]}
    delta = artifact.diff(old, new, dp_artifacts.DERIVE)
    assert delta["policies"]["set"] == {"p-new": NEW_POLICY} and "derive" not in delta["policies"]


def test_the_desired_state_and_the_ip_table_from_the_artifacts():
    documents = {"fleet": {"ipcache": {"10.1.1.10/32": 300, "192.0.2.11/32": 6}}, "host": host("p", OLD_POLICY)}
    state = dp_artifacts.state_from(documents)
    assert sorted(map(tuple, state["ipcache"])) == [("10.1.1.10/32", 300), ("192.0.2.11/32", 1)]  # own rows win
    assert state["endpoints"] == [documents["host"]["endpoints"]["default/web"]] and state["policies"] == {"p": OLD_POLICY}


def test_the_proxy_reads_the_table_only_at_the_versions_asked(tmp_path):
    copies = artifact.LocalCopies(str(tmp_path))
    versions = {"fleet": copies.write("fleet", {"ipcache": {"10.1.1.10/32": 300}}), "host": copies.write("host", host("p", OLD_POLICY))}
    assert dp_artifacts.applied_ip_table(str(tmp_path), versions) == ({"10.1.1.10/32": 300, "192.0.2.11/32": 1}, None)
    table, why = dp_artifacts.applied_ip_table(str(tmp_path), dict(versions, host="f" * 64))
    assert table is None and why.startswith("the datapath's host artifact in %s is version " % tmp_path)
    assert dp_artifacts.applied_ip_table(str(tmp_path / "none"), versions)[1] == "no copy of fleet in %s" % (tmp_path / "none")


def test_the_default_state_directory_sits_beside_the_proxy_directory():
    assert dp_artifacts.default_state_dir("/sys/fs/bpf/lab-node1/") == "/var/lib/palisade/lab-node1/datapath"
