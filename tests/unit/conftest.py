"""Unit tests load the collection through Ansible's own collection finder, so
plugin loaders (connection_loader etc.) resolve palisade.ebpf.* like a run does."""

import os

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "collections")

_AnsibleCollectionFinder(paths=[_COLLECTIONS])._install()
