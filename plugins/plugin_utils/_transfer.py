# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run ships to a host's datapath: its two artifacts
(module_utils/_artifact.py) as versions and deltas, read from the share
store that palisade.ebpf.fleet_state's registered result names.

- ``fleet``: the fleet's IP table, the same for every host; its deltas from
  earlier versions were computed once by fleet_state.
- ``host``: the host's own endpoints, policies, identity labels and IP table
  rows; its deltas are computed here, from the earlier versions fleet_state
  listed for the host (small documents); a policy that replaces the one an
  endpoint used before goes as the rows added to and removed from it.

The first attempt sends versions and deltas only. A host that holds none of
the versions the deltas start from (a new host, one that missed more runs
than the controller keeps, a damaged copy) answers "stale", and the second
attempt sends those artifacts in full (``full``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath import artifacts as dp_artifacts
from ansible_collections.palisade.ebpf.plugins.plugin_utils._store import ShareStore

ARTIFACTS = ("fleet", "host")


def datapath_transfers(fleet_state, host, full=()):
    """{"fleet": transfer, "host": transfer} for ``host``; the artifacts named
    in ``full`` go whole. Raises ValueError (_store.StoreError) when the
    store no longer holds what the result names, KeyError for a host the
    result does not have."""
    store = ShareStore(fleet_state["store"])
    objects = fleet_state["objects"]
    versions = fleet_state["hosts"][host]["datapath"]
    out = {}
    if "fleet" in full:
        out["fleet"] = {"version": objects["fleet_table"],
                        "packed": {"ipcache": store.get(objects["ipcache_packed"])}}
    else:
        out["fleet"] = {"version": objects["fleet_table"],
                        "deltas": dict((old, store.get(name)) for old, name in objects["fleet_table_deltas"].items())}
    current = versions[0]
    if "host" in full:
        out["host"] = {"version": current, "full": store.get(current)}
    else:
        deltas = {}
        if versions[1:]:
            document = store.get(current)
            for old in versions[1:]:
                if store.has(old):
                    deltas[old] = artifact.diff(store.get(old), document, dp_artifacts.DERIVE)
        out["host"] = {"version": current, "deltas": deltas}
    return out
