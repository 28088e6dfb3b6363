# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run ships to a host's datapath: its two artifacts
(module_utils/_artifact.py) as versions and deltas, and the flat policy
objects its host artifact names, read from the share store that
palisade.ebpf.fleet_state's registered result names.

- ``fleet``: the fleet's IP table, the same for every host; its deltas from
  earlier versions were computed once by fleet_state.
- ``host``: the host's own endpoints, policy object versions, identity
  labels and IP table rows; its deltas are computed here, from the earlier
  versions fleet_state listed for the host (small documents).
- ``objects``: the flat policies the current host artifact names and the
  previous one did not, each as the rows added to and removed from the
  object the same endpoint used before when the store still has it
  (_datapath/artifacts.policy_diff), else whole.

The first attempt sends versions, deltas and those objects. A host that
cannot build a version (new, behind by more runs than the controller keeps,
a damaged copy) or lacks an object answers "stale", and the next attempt
sends what it lacks whole (``full``, ``objects``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import artifacts as dp_artifacts
from ansible_collections.palisade.ebpf.plugins.plugin_utils._store import ShareStore


def _new_objects(store, document, previous):
    """{version: how} for the policy objects ``document`` names that
    ``previous`` (the host artifact a run before, or None) did not."""
    before = set((previous or {}).get("policies", {}).values())
    sent = {}
    for ref, name in sorted(document["policies"].items()):
        if name in before or name in sent:
            continue
        base = None
        if previous is not None:
            for key, endpoint in sorted(document["endpoints"].items()):
                old = previous["endpoints"].get(key)
                if endpoint.get("policy") == ref and old and old.get("policy") in previous["policies"]:
                    base = previous["policies"][old["policy"]]
                    break
        if base is not None and store.has(base):
            sent[name] = {"from": base, "patch": dp_artifacts.policy_diff(store.get(base), store.get(name))}
        else:
            sent[name] = {"full": store.get(name)}
    return sent


def datapath_transfers(fleet_state, host, full=(), objects=()):
    """{"fleet": transfer, "host": transfer} for ``host``; the artifacts named
    in ``full`` go whole (with every policy object, when ``host`` does), the
    policy objects in ``objects`` whole. Raises ValueError
    (_store.StoreError) when the store no longer holds what the result
    names, KeyError for a host the result does not have."""
    store = ShareStore(fleet_state["store"])
    state_objects = fleet_state["objects"]
    versions = fleet_state["hosts"][host]["datapath"]
    out = {}
    if "fleet" in full:
        out["fleet"] = {"version": state_objects["fleet_table"],
                        "packed": {"ipcache": store.get(state_objects["ipcache_packed"])}}
    else:
        out["fleet"] = {"version": state_objects["fleet_table"],
                        "deltas": dict((old, store.get(name)) for old, name in state_objects["fleet_table_deltas"].items())}
    current = versions[0]
    if "host" in full:
        document = store.get(current)
        out["host"] = {"version": current, "full": document}
        sent = dict((name, {"full": store.get(name)}) for name in sorted(set(document["policies"].values())))
    else:
        deltas, sent = {}, {}
        earlier = [old for old in versions[1:] if store.has(old)]
        if earlier:
            document = store.get(current)
            previous = None
            for old in earlier:
                old_document = store.get(old)
                previous = old_document if previous is None else previous
                deltas[old] = artifact.diff(old_document, document)
            sent = _new_objects(store, document, previous)
        out["host"] = {"version": current, "deltas": deltas}
    for name in objects:
        sent[name] = {"full": store.get(name)}
    out["objects"] = sent
    return out
