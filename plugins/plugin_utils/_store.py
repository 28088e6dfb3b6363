# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's share store: what fleet_state computed for each host,
kept on the controller as content-addressed JSON objects.

Why: Ansible walks a registered result several times (the callback's copy,
``strip_internal_keys``, native-type conversion), in the main process, at a
cost that grows with its size; a fleet's shares registered as one variable
cost minutes at a thousand hosts (docs/fleet-scale.md). So fleet_state
registers only each host's object name (its SHA-256) and the host's tasks
read their own object back through the ``host_want`` filter.

An object's name is the SHA-256 of its canonical JSON (the version of
module_utils/_artifact.py, which hosts compute alike), so an unchanged
share keeps its name and is not written again, and a reader can tell a
damaged file from the object it names. Each object is written atomically
(temporary file, then rename). ``keep`` removes the objects that neither
this run nor the one before it names: a play that registered the previous
run's names can still finish while the next run computes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os

from ansible_collections.palisade.ebpf.plugins.module_utils._artifact import canonical, write_atomic

# Runs whose objects are kept (this one and the one before).
KEEP_RUNS = 2
_RUNS_FILE = "runs.json"
_INDEX_FILE = "index.json"
_SUFFIX = ".json"


class StoreError(ValueError):
    """An object is missing or damaged; the message names it and says what to do."""


class ShareStore:
    """Objects under ``root`` (created on first write)."""

    def __init__(self, root):
        self.root = root
        self.written = 0  # objects this instance wrote (the others existed already)

    def _path(self, name):
        return os.path.join(self.root, name + _SUFFIX)

    def put(self, value):
        """Store ``value`` (plain JSON data); its name."""
        data = canonical(value)
        name = hashlib.sha256(data).hexdigest()
        path = self._path(name)
        if not os.path.exists(path):
            os.makedirs(self.root, exist_ok=True)
            write_atomic(path, data)
            self.written += 1
        return name

    def get(self, name):
        """The object ``name``; StoreError when it is missing or does not
        hash to its name."""
        if not isinstance(name, str) or len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
            raise StoreError("share store: %r is not an object name; register palisade.ebpf.fleet_state's result "
                             "and pass it unchanged" % (name,))
        try:
            with open(self._path(name), "rb") as handle:
                data = handle.read()
        except (IOError, OSError):
            raise StoreError("share store %s: object %s is missing; run palisade.ebpf.fleet_state again in this play"
                             % (self.root, name))
        if hashlib.sha256(data).hexdigest() != name:
            raise StoreError("share store %s: object %s is damaged (its content does not match its name); "
                             "run palisade.ebpf.fleet_state again" % (self.root, name))
        return json.loads(data.decode("utf-8"))

    def has(self, name):
        return os.path.exists(self._path(name))

    def index(self):
        """The index the last run saved ({key: object name}), or {}."""
        try:
            with open(os.path.join(self.root, _INDEX_FILE)) as handle:
                index = json.load(handle)
        except (IOError, OSError, ValueError):
            return {}
        return index if isinstance(index, dict) else {}

    def save_index(self, index):
        """Keep ``index`` ({key: object name}) for the next run: a share's
        inputs, digested, to the object computed from them."""
        os.makedirs(self.root, exist_ok=True)
        write_atomic(os.path.join(self.root, _INDEX_FILE), json.dumps(index, sort_keys=True).encode("utf-8"))

    def keep(self, names):
        """Record ``names`` as this run's objects and remove every object
        that neither this run nor the previous KEEP_RUNS - 1 runs name."""
        runs_path = os.path.join(self.root, _RUNS_FILE)
        try:
            with open(runs_path) as handle:
                runs = json.load(handle)
            if not isinstance(runs, list):
                runs = []
        except (IOError, OSError, ValueError):
            runs = []
        runs = ([sorted(set(names))] + runs)[:KEEP_RUNS]
        os.makedirs(self.root, exist_ok=True)
        write_atomic(runs_path, json.dumps(runs).encode("utf-8"))
        live = set(name for run in runs for name in run)
        removed = 0
        for entry in os.listdir(self.root):
            if entry.endswith(_SUFFIX) and entry not in (_RUNS_FILE, _INDEX_FILE) and entry[:-len(_SUFFIX)] not in live:
                os.unlink(os.path.join(self.root, entry))
                removed += 1
        return removed
