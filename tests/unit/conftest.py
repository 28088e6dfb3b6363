"""Unit tests load the collection through Ansible's own collection finder, so
plugin loaders (connection_loader etc.) resolve palisade.ebpf.* like a run does."""

import os

import pytest
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "collections")

_AnsibleCollectionFinder(paths=[_COLLECTIONS])._install()


@pytest.fixture(autouse=True)
def controller_cache_of_this_test(tmp_path, monkeypatch):
    """fleet_state writes its share store (and, with the cache on, its
    cache) under $XDG_CACHE_HOME/palisade by default: each test gets its own,
    so no test writes to the user's home or sees another test's objects."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
