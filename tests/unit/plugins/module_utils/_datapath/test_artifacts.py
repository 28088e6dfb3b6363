"""The datapath's artifacts (module_utils/_datapath/artifacts.py): the desired
state built from them, policy objects sent as changes to the one an endpoint
used before and checked against their versions, and the IP table the L7
proxy reads back."""

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
            "policies": {policy_name: artifact.version(policy)}, "identities": {}, "overrides": {"192.0.2.11/32": 1}}


def test_a_replaced_policy_travels_as_its_changed_rows_and_is_checked(tmp_path):
    copies = dp_artifacts.policy_copies(str(tmp_path))
    old_name, new_name = copies.put(OLD_POLICY), artifact.version(NEW_POLICY)
    change = dp_artifacts.policy_diff(OLD_POLICY, NEW_POLICY)
    assert change == {"ingress": {"enforced": True, "add": [(302, 6, 80, 80, "redirect")], "remove": [(301, 6, 80, 80, "allow")]},
                      "egress": {"enforced": True, "add": [(0, 17, 53, 53, "allow")], "remove": []}}
    sent = json.loads(json.dumps({new_name: {"from": old_name, "patch": change}}))  # as it travels
    policies, new, missing = dp_artifacts.resolve_policies(host("p-new", NEW_POLICY), sent, copies)
    assert policies == {"p-new": NEW_POLICY} and new == {new_name: NEW_POLICY} and missing == []
    # A patch that does not give the object it names, or a base the host lacks: missing, not guessed.
    wrong = {new_name: {"from": old_name, "patch": dp_artifacts.policy_diff(OLD_POLICY, OLD_POLICY)}}
    assert dp_artifacts.resolve_policies(host("p-new", NEW_POLICY), wrong, copies)[2] == [new_name]
    orphan = {new_name: {"from": "0" * 64, "patch": change}}
    assert dp_artifacts.resolve_policies(host("p-new", NEW_POLICY), orphan, copies)[2] == [new_name]
    assert dp_artifacts.resolve_policies(host("p-new", NEW_POLICY), {}, copies)[2] == [new_name]


def test_a_damaged_object_is_not_used(tmp_path):
    copies = dp_artifacts.policy_copies(str(tmp_path))
    name = copies.put(OLD_POLICY)
    (tmp_path / "policies" / (name + ".json")).write_text(json.dumps(NEW_POLICY))
    assert copies.get(name) is None
    assert dp_artifacts.resolve_policies(host("p", OLD_POLICY), {}, copies)[2] == [name]


def test_the_host_keeps_only_the_objects_its_artifact_names(tmp_path):
    copies, objects = artifact.LocalCopies(str(tmp_path)), dp_artifacts.policy_copies(str(tmp_path))
    stale_name = objects.put(NEW_POLICY)
    document = host("p", OLD_POLICY)
    transfers = {"fleet": {"version": artifact.version({"ipcache": {}}), "full": {"ipcache": {}}},
                 "host": {"version": artifact.version(document), "full": document},
                 "objects": {document["policies"]["p"]: {"full": OLD_POLICY}}}
    resolved = dp_artifacts.resolve(transfers, copies, objects)
    assert resolved.stale == [] and resolved.how == {"fleet": "full", "host": "full"}
    resolved.keep(copies, objects)
    assert objects.get(document["policies"]["p"]) == OLD_POLICY and objects.get(stale_name) is None
    # The next run: versions only, everything from what the host keeps.
    again = dp_artifacts.resolve({"fleet": {"version": transfers["fleet"]["version"]},
                                  "host": {"version": transfers["host"]["version"]}}, copies, objects)
    assert again.how == {"fleet": "kept", "host": "kept"} and again.state()["policies"] == {"p": OLD_POLICY}


def test_the_desired_state_and_the_ip_table_from_the_artifacts():
    documents = {"fleet": {"ipcache": {"10.1.1.10/32": 300, "192.0.2.11/32": 6}}, "host": host("p", OLD_POLICY)}
    state = dp_artifacts.state_from(documents, {"p": OLD_POLICY})
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
