# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of palisade.ebpf.policy_trace: verdicts for probes,
computed from the policies (no traffic, no host contacted).

The fleet, namespaces and policies come from the inventory, like
fleet_state's, unless the task gives ``endpoints``, ``namespaces`` or
``policies`` to try something out.
"""

from __future__ import annotations

import ipaddress

from ansible.plugins.action import ActionBase

from ansible_collections.palisade.ebpf.plugins.action.fleet_state import (
    node_names_digest,
    policy_base_dir,
    policy_rules,
)
from ansible_collections.palisade.ebpf.plugins.plugin_utils._model import InventoryError, load_fleet
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, ir, parse, trace
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import files as policy_files

# Node addresses for hosts that only appear in ``endpoints``: from the
# reserved 240.0.0.0/4, which no real node or endpoint uses.
_PLACEHOLDER_NODES = ipaddress.IPv4Network("240.0.0.0/4")


class TraceInputError(ValueError):
    """Bad task arguments; the message is one line naming the argument."""


def _inventory_nodes(task_vars):
    hostvars = task_vars.get("hostvars", {})
    nodes = {}
    for name in task_vars.get("groups", {}).get("all", []):
        node = hostvars[name].get("palisade_node")
        if node is not None:
            nodes[name] = node
    return nodes


def hostvars_from_endpoints(endpoints, inventory_nodes):
    """Host variables (DESIGN.md section 3) for ``endpoints`` given to the
    task, each with a ``host``: every inventory node keeps its address (so
    that node addresses resolve to host / remote-node) and gets only the
    endpoints given for it; other hosts get a placeholder address."""
    if not isinstance(endpoints, list):
        raise TraceInputError("endpoints: must be a list of endpoints, each with a 'host'")
    raw = {host: {"palisade_node": dict(node), "palisade_endpoints": []} for host, node in inventory_nodes.items()}
    used = {str(ep.get("ipv4")) for ep in endpoints if isinstance(ep, dict)}
    used.update(str(node.get("ipv4")) for node in inventory_nodes.values() if isinstance(node, dict))
    placeholders = (str(a) for a in _PLACEHOLDER_NODES.hosts() if str(a) not in used)
    for index, endpoint in enumerate(endpoints):
        if not isinstance(endpoint, dict) or not isinstance(endpoint.get("host"), str) or not endpoint["host"]:
            raise TraceInputError("endpoints[%d]: must be a mapping with a 'host' (the inventory host it lives on)"
                                  % index)
        host = endpoint["host"]
        if host not in raw:
            raw[host] = {"palisade_node": {"ipv4": next(placeholders)}, "palisade_endpoints": []}
        raw[host]["palisade_endpoints"].append({k: v for k, v in endpoint.items() if k != "host"})
    return raw


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("probes", "endpoints", "namespaces", "policies"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        try:
            policy = self._policy(args, task_vars)
            result["results"] = trace.trace(policy, args.get("probes"))
        except (InventoryError, TraceInputError, ir.PolicyError, trace.TraceError) as exc:
            prefix = "invalid inventory: " if isinstance(exc, InventoryError) else ""
            result.update(failed=True, msg=prefix + str(exc))
            return result
        result["changed"] = False
        return result

    def _policy(self, args, task_vars):
        if args.get("probes") is None:
            raise TraceInputError("probes: required, a list of {from, to, port, protocol, http}")
        custom = any(args.get(k) is not None for k in ("endpoints", "namespaces", "policies"))
        namespaces = args.get("namespaces")
        if namespaces is None:
            namespaces = task_vars.get("palisade_namespaces")
        if args.get("endpoints") is not None:
            raw = hostvars_from_endpoints(args["endpoints"], _inventory_nodes(task_vars))
        else:
            hostvars = task_vars.get("hostvars", {})
            raw = {name: {key: hostvars[name].get(key) for key in ("palisade_node", "palisade_endpoints")}
                   for name in task_vars.get("groups", {}).get("all", [])}
        # The inventory's own fleet shares fleet_state's cache (validated
        # hosts, and a no-op update when nothing changed); what-if inputs
        # are computed apart.
        cache = None
        if not custom:
            cache = engine.PersistentCache(None, node_names_digest(
                name for name, hv in raw.items() if hv["palisade_node"] is not None))
        fleet = load_fleet(raw, namespaces, cache=cache.model_cache() if cache is not None else None)
        if args.get("policies") is not None:
            rules = parse.parse_documents(policy_files.documents_from_policies(args["policies"], "policies"))
        else:
            rules = policy_rules(task_vars, self._templar, policy_base_dir(task_vars, self._loader),
                                 cache.parse_memo() if cache is not None else None)
        return engine.compute(fleet, rules, cache=cache)
