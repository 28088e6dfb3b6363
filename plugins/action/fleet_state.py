# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of palisade.ebpf.fleet_state: validate and split the fleet.

Runs on the controller only (it never executes a module on a host), so bad
input fails the play before any host is touched.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.palisade.ebpf.plugins.module_utils.fleet import host_shares
from ansible_collections.palisade.ebpf.plugins.module_utils.model import InventoryError, load_fleet

_READ_VARS = ("palisade_node", "palisade_endpoints", "palisade_lab_prefix")


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("hosts",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        hostnames = self._task.args.get("hosts") or task_vars.get("groups", {}).get("all", [])
        hostvars = task_vars.get("hostvars", {})
        raw = {}
        prefixes = {}
        for name in hostnames:
            hv = hostvars[name]
            raw[name] = {key: hv.get(key) for key in _READ_VARS[:2]}
            prefixes[name] = hv.get("palisade_lab_prefix")
        try:
            fleet = load_fleet(raw, task_vars.get("palisade_namespaces"))
        except InventoryError as exc:
            result.update(failed=True, msg="invalid inventory: %s" % exc)
            return result
        shares = host_shares(fleet, prefixes)
        result.update(
            changed=False,
            hosts=shares,
            summary={
                "nodes": len(fleet["nodes"]),
                "endpoints": sum(len(n["endpoints"]) for n in fleet["nodes"].values()),
                "namespaces": sorted(fleet["namespaces"]),
            },
        )
        return result
