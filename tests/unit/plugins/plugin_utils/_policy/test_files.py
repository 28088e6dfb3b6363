"""palisade_policy_files globs and palisade_policies entries -> (origin,
document) pairs for the parser; bad files and YAML give one-line errors."""

import os

import pytest

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import ir, parse
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import files as policy_files

CNP = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: {name}
spec:
  endpointSelector: {{}}
  ingress:
  - {{}}
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error(fn, *args, **kwargs):
    with pytest.raises(ir.PolicyError) as info:
        fn(*args, **kwargs)
    text = str(info.value)
    assert len(text.splitlines()) == 1, text
    return text


def test_multi_document_files_get_path_and_index_origins(tmp_path):
    write(tmp_path / "policies" / "b.yaml", "---\n" + CNP.format(name="b1") + "---\n---\n# only a comment\n---\n" + CNP.format(name="b2"))
    write(tmp_path / "policies" / "a.yaml", CNP.format(name="a"))
    write(tmp_path / "policies" / "notes.txt", "not yaml: [")
    docs = policy_files.documents_from_files(["policies/*.yaml"], str(tmp_path))
    assert [o for o, dummy in docs] == ["policies/a.yaml#0", "policies/b.yaml#0", "policies/b.yaml#3"]
    assert docs[2][1]["metadata"]["name"] == "b2"
    rules = parse.parse_documents(docs)
    assert {r.origin for r in rules} == {"policies/a.yaml#0", "policies/b.yaml#0", "policies/b.yaml#3"}


def test_absolute_and_recursive_globs_and_files_matched_twice(tmp_path):
    write(tmp_path / "p" / "x.yaml", CNP.format(name="x"))
    write(tmp_path / "p" / "deep" / "er" / "y.yml", CNP.format(name="y"))
    absolute = str(tmp_path / "p" / "*.yaml")
    docs = policy_files.documents_from_files([absolute, "p/**/*.y*ml", "p/x.yaml"], str(tmp_path))
    assert [o for o, dummy in docs] == [os.path.join(str(tmp_path), "p", "x.yaml#0"), "p/deep/er/y.yml#0"]
    docs = policy_files.documents_from_files(["../p/*.yaml"], str(tmp_path / "elsewhere"))
    assert [o for o, dummy in docs] == ["../p/x.yaml#0"]


def test_a_single_string_is_one_glob(tmp_path):
    write(tmp_path / "one.yaml", CNP.format(name="one"))
    assert [o for o, dummy in policy_files.documents_from_files("one.yaml", str(tmp_path))] == ["one.yaml#0"]


def test_none_gives_nothing():
    assert policy_files.documents_from_files(None) == []
    assert policy_files.documents_from_policies(None) == []
    assert policy_files.load_policy_documents() == []


def test_base_dir_defaults_to_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "w.yaml", CNP.format(name="w"))
    monkeypatch.chdir(tmp_path)
    assert [o for o, dummy in policy_files.documents_from_files(["*.yaml"])] == ["w.yaml#0"]


def test_palisade_policies_origins_and_combined_order(tmp_path):
    write(tmp_path / "f.yaml", CNP.format(name="f"))
    inline = [{"kind": "x"}, {"kind": "y"}]
    docs = policy_files.load_policy_documents(inline, ["f.yaml"], str(tmp_path))
    assert [o for o, dummy in docs] == ["palisade_policies[0]", "palisade_policies[1]", "f.yaml#0"]
    assert docs[0][1] is inline[0]


def test_errors_name_the_glob(tmp_path):
    text = error(policy_files.documents_from_files, ["ok.yaml", "missing/*.yaml"], str(tmp_path))
    assert text.startswith("palisade_policy_files[0]: glob: ")  # ok.yaml does not exist either
    write(tmp_path / "ok.yaml", CNP.format(name="ok"))
    text = error(policy_files.documents_from_files, ["ok.yaml", "missing/*.yaml"], str(tmp_path))
    assert text.startswith('palisade_policy_files[1]: glob: "missing/*.yaml" matches no file (relative to ')
    assert error(policy_files.documents_from_files, [7], str(tmp_path)).startswith("palisade_policy_files[0]: glob: must be")
    assert "must be a list" in error(policy_files.documents_from_files, {"a": 1}, str(tmp_path))
    assert "must be a list" in error(policy_files.documents_from_policies, "apiVersion: x")


def test_directories_matched_by_a_glob_are_skipped(tmp_path):
    (tmp_path / "d.yaml").mkdir()
    write(tmp_path / "e.yaml", CNP.format(name="e"))
    assert [o for o, dummy in policy_files.documents_from_files(["*.yaml"], str(tmp_path))] == ["e.yaml#0"]
    assert "matches no file" in error(policy_files.documents_from_files, ["d.yaml"], str(tmp_path))


@pytest.mark.parametrize("text,origin,fragment", [
    (CNP.format(name="a") + "---\nkey: [unclosed\n", "bad.yaml#1", "line 11, column 1"),
    ("a: 1\nb: 2\na: 3\n", "bad.yaml#0", 'duplicate key "a" (first at line 1)'),
    ("spec:\n  ingress: []\n  egress: []\n  ingress: [{}]\n", "bad.yaml#0", 'duplicate key "ingress"'),
    ("---\nx: 1\n---\n---\n- {b: 1, b: 2}\n", "bad.yaml#2", 'duplicate key "b"'),
    ("!!python/object/apply:os.system ['true']\n", "bad.yaml#0", "could not determine a constructor"),
    ("a: !!binary not-base64!\n", "bad.yaml#0", "invalid YAML"),
    ("a: b\n\tc: d\n", "bad.yaml#0", "invalid YAML"),
])
def test_bad_yaml(tmp_path, text, origin, fragment):
    write(tmp_path / "bad.yaml", text)
    msg = error(policy_files.documents_from_files, ["bad.yaml"], str(tmp_path))
    assert msg.startswith(origin + ": document: invalid YAML: "), msg
    assert fragment in msg, msg


def test_merge_keys_may_override(tmp_path):
    write(tmp_path / "m.yaml", "base: &b {a: 1, c: 2}\nuse:\n  <<: *b\n  a: 3\n")
    [(origin, doc)] = policy_files.documents_from_files(["m.yaml"], str(tmp_path))
    assert doc["use"] == {"a": 3, "c": 2}


def test_unreadable_and_non_utf8_files(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"a: \xff\xfe\n")
    assert error(policy_files.documents_from_files, ["bin.yaml"], str(tmp_path)) == \
        "bin.yaml: file: not UTF-8 text (byte 3)"
    assert "cannot read" in error(policy_files.load_file, str(tmp_path / "nope.yaml"), "nope.yaml")


def test_bom_is_accepted(tmp_path):
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + CNP.format(name="bom").encode())
    [(origin, doc)] = policy_files.documents_from_files(["bom.yaml"], str(tmp_path))
    assert doc["kind"] == "CiliumNetworkPolicy"


def test_policy_errors_from_files_name_file_and_document(tmp_path):
    write(tmp_path / "policies" / "starwars.yaml", CNP.format(name="ok") + "---\n" + """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
  namespace: default
spec:
  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "99999", protocol: TCP}]
""")
    docs = policy_files.documents_from_files(["policies/*.yaml"], str(tmp_path))
    with pytest.raises(ir.PolicyError) as info:
        parse.parse_documents(docs)
    assert str(info.value) == ('policies/starwars.yaml#1: CiliumNetworkPolicy default/rule1: '
                               'spec.ingress[0].toPorts[0].ports[0].port: "99999" is not a valid port '
                               '(1-65535, 0 for every port, or an IANA service name)')


def test_duplicates_across_files_name_both(tmp_path):
    write(tmp_path / "a.yaml", CNP.format(name="same"))
    write(tmp_path / "b.yaml", "---\n" + CNP.format(name="other") + "---\n" + CNP.format(name="same"))
    docs = policy_files.load_policy_documents(None, ["*.yaml"], str(tmp_path))
    with pytest.raises(ir.PolicyError) as info:
        parse.parse_documents(docs)
    assert str(info.value).startswith("b.yaml#1: CiliumNetworkPolicy default/same: metadata.name: defined twice: here and at a.yaml#0")
