# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Root pytest glue: make ``ansible_collections.palisade.ebpf`` importable.

The repository root is the collection root, so the collection is reached
through ``collections/ansible_collections/palisade/ebpf``, a symlink back to
the repository. ``make setup`` creates it; this file does too, so that a plain
``pytest`` in a fresh checkout works.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / "collections"
COLLECTION_LINK = COLLECTIONS / "ansible_collections" / "palisade" / "ebpf"
INTEGRATION = ROOT / "tests" / "integration"


def _ensure_collection_link():
    if COLLECTION_LINK.is_symlink():
        if os.path.realpath(COLLECTION_LINK) == str(ROOT):
            return
        COLLECTION_LINK.unlink()  # stale: the checkout moved
    elif COLLECTION_LINK.exists():
        raise RuntimeError("%s exists and is not a symlink to %s" % (COLLECTION_LINK, ROOT))
    COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
    try:
        COLLECTION_LINK.symlink_to(ROOT, target_is_directory=True)
    except FileExistsError:  # another xdist worker got there first
        pass


_ensure_collection_link()
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

# Once ansible's own collection loader is active (plugin loaders, module
# tests), it resolves ansible_collections.* from the configured collection
# paths rather than sys.path: make those agree.
_paths = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
if str(COLLECTIONS) not in _paths:
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([str(COLLECTIONS)] + _paths)


def pytest_collection_modifyitems(config, items):
    """Mark tests under tests/integration; skip them when not root."""
    is_root = os.geteuid() == 0
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)
            if not is_root:
                item.add_marker(pytest.mark.skip(reason="integration tests need root"))
