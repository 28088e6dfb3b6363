"""The controller's share store (plugin_utils/_store.py): objects named by
their content, written once, kept for two runs."""

import hashlib
import os

import pytest

from ansible_collections.palisade.ebpf.plugins.plugin_utils._store import ShareStore, StoreError, canonical


def test_an_object_is_named_by_its_canonical_json_and_written_once(tmp_path):
    store = ShareStore(str(tmp_path / "s"))
    name = store.put({"b": [1, 2], "a": "x"})
    assert name == hashlib.sha256(b'{"a":"x","b":[1,2]}').hexdigest() == hashlib.sha256(canonical({"a": "x", "b": [1, 2]})).hexdigest()
    assert store.put({"a": "x", "b": [1, 2]}) == name and store.written == 1
    assert ShareStore(store.root).get(name) == {"a": "x", "b": [1, 2]}
    assert [n for n in os.listdir(store.root) if n.startswith(".tmp-")] == []


def test_keep_removes_what_neither_this_run_nor_the_one_before_names(tmp_path):
    store = ShareStore(str(tmp_path))
    first, second, third = store.put(1), store.put(2), store.put(3)
    assert store.keep([first]) == 2  # 2 and 3 were named by no run
    second, third = store.put(2), store.put(3)
    assert store.keep([second]) == 1  # 3 goes; 1 stays for a run
    assert store.get(first) == 1 and store.get(second) == 2
    assert store.keep([third if store.put(3) else None]) == 1  # 1 goes now
    with pytest.raises(StoreError, match="is missing"):
        store.get(first)
    assert store.get(second) == 2 and store.get(third) == 3


def test_a_damaged_run_list_only_means_less_is_kept(tmp_path):
    store = ShareStore(str(tmp_path))
    kept, dropped = store.put("a"), store.put("b")
    (tmp_path / "runs.json").write_text("{not json")
    assert store.keep([kept]) == 1
    assert store.get(kept) == "a"
    with pytest.raises(StoreError):
        store.get(dropped)
