# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of palisade.ebpf.fleet_state: validate the fleet and its
policies, compute the policy once, and split everything into host shares
(plugin_utils/_fleet.py).

Runs on the controller only (it never executes a module on a host), so bad
input fails the play before any host is touched.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.palisade.ebpf.plugins.plugin_utils import _fleet as fleet
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _inventory as inventory_mod
from ansible_collections.palisade.ebpf.plugins.plugin_utils._fleet_file import FleetFileError

display = Display()


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("hosts", "cache", "cache_dir"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        inventory = inventory_mod.Inventory.of_task(task_vars, args.get("hosts"))
        try:
            state, warnings = fleet.fleet_state(
                inventory.raw_hosts(), inventory_mod.namespaces(task_vars),
                inventory_mod.policy_documents(task_vars, self._templar, self._loader), inventory.lab_prefixes(),
                use_cache=args.get("cache", True), cache_dir=args.get("cache_dir"))
        except (fleet.FleetError, FleetFileError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        for warning in warnings:
            display.warning("palisade.ebpf.fleet_state: %s" % warning)
        result.update(changed=False, **state)
        return result
