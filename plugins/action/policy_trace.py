# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of palisade.ebpf.policy_trace: verdicts for probes,
computed from the policies (no traffic, no host contacted) by the same
computation as fleet_state's (plugin_utils/_fleet.py).

The fleet, namespaces and policies come from the inventory, like
fleet_state's, unless the task gives ``endpoints``, ``namespaces`` or
``policies`` to try something out.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet as fleet
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _inventory as inventory_mod


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("probes", "endpoints", "namespaces", "policies"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        try:
            result["results"] = fleet.trace(
                args.get("probes"), inventory_mod.Inventory.of_task(task_vars), inventory_mod.namespaces(task_vars),
                inventory_mod.policy_documents(task_vars, self._templar, self._loader),
                what_if={k: args.get(k) for k in ("endpoints", "namespaces", "policies")})
        except fleet.FleetError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result["changed"] = False
        return result
