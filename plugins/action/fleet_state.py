# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of palisade.ebpf.fleet_state: validate the fleet and its
policies, compute the policy once, and split everything into host shares.

Runs on the controller only (it never executes a module on a host), so bad
input fails the play before any host is touched.
"""

from __future__ import annotations

import hashlib
import os

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.palisade.ebpf.plugins.plugin_utils._shares import host_shares
from ansible_collections.palisade.ebpf.plugins.plugin_utils._model import InventoryError, load_fleet
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, ir, parse
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import files as policy_files

display = Display()

_READ_VARS = ("palisade_node", "palisade_endpoints", "palisade_lab_prefix")


def policy_rules(task_vars, templar, base_dir, memo=None):
    """The inventory's policies (``palisade_policies``, then the files of
    ``palisade_policy_files``) as ir.Rules; raises ir.PolicyError.
    ``memo``: a parse.ParseMemo (documents parsed in earlier runs), or None."""
    policies = templar.template(task_vars.get("palisade_policies"))
    files = templar.template(task_vars.get("palisade_policy_files"))
    return parse.parse_documents(policy_files.load_policy_documents(policies, files, base_dir), memo=memo)


def policy_base_dir(task_vars, loader):
    """Where relative ``palisade_policy_files`` globs start: the inventory's
    directory (policies live beside the inventory that names them), else the
    playbook's directory."""
    inventory_dir = task_vars.get("inventory_dir")
    if inventory_dir:
        return inventory_dir
    for source in task_vars.get("ansible_inventory_sources") or []:
        if isinstance(source, str) and os.path.exists(source):
            return source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))
    return loader.get_basedir()


def cache_name(fleet):
    """One cache file per fleet (its sorted host names): two inventories used
    from one controller do not keep replacing each other's state."""
    return node_names_digest(fleet["nodes"])


def node_names_digest(names):
    return hashlib.sha256("\n".join(sorted(names)).encode("utf-8")).hexdigest()[:16]


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("hosts", "cache", "cache_dir"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        # The whole computation with the cyclic collector paused: see
        # state.controller_run (it halves a run after a small change).
        with engine.controller_run():
            return self._compute(result, task_vars or {})

    def _compute(self, result, task_vars):
        args = self._task.args
        hostnames = args.get("hosts") or task_vars.get("groups", {}).get("all", [])
        hostvars = task_vars.get("hostvars", {})
        raw = {}
        prefixes = {}
        for name in hostnames:
            hv = hostvars[name]
            raw[name] = {key: hv.get(key) for key in _READ_VARS[:2]}
            prefixes[name] = hv.get("palisade_lab_prefix")
        cache = None
        if args.get("cache", True):
            # Named before validation (by the hosts that declare a node, as
            # cache_name names it), so that load_fleet can reuse its records.
            nodes = [name for name, hv in raw.items() if hv["palisade_node"] is not None]
            cache = engine.PersistentCache(args.get("cache_dir"), node_names_digest(nodes))
        try:
            fleet = load_fleet(raw, task_vars.get("palisade_namespaces"),
                               cache=cache.model_cache() if cache is not None else None)
        except InventoryError as exc:
            result.update(failed=True, msg="invalid inventory: %s" % exc)
            return result
        try:
            rules = policy_rules(task_vars, self._templar, policy_base_dir(task_vars, self._loader),
                                 cache.parse_memo() if cache is not None else None)
        except ir.PolicyError as exc:
            result.update(failed=True, msg=str(exc))
            return result

        policy = engine.compute(fleet, rules, cache=cache)
        if cache is not None:
            try:
                cache.save()
            except OSError as exc:  # a cache that cannot be written only costs time
                display.warning("palisade.ebpf.fleet_state: cannot write the policy cache in %s: %s"
                                % (cache.path, exc))
        for warning in policy.warnings:
            display.warning("palisade.ebpf.fleet_state: %s" % warning)

        table = policy.table
        result.update(
            changed=False,
            hosts=host_shares(fleet, prefixes, policy),
            ipcache=policy.ipcache_shared(),
            identities={str(n): policy.table.describe(n) for n in sorted(table.numbers()) if n in
                        table.endpoint_numbers or n in table.cidr_numbers},
            summary={
                "nodes": len(fleet["nodes"]),
                "endpoints": sum(len(n["endpoints"]) for n in fleet["nodes"].values()),
                "namespaces": sorted(fleet["namespaces"]),
                "rules": len(rules),
                "identities": len(table.endpoint_numbers),
                "policy_computation": policy.stats["mode"],
            },
        )
        return result
