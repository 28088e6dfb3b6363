# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's computation, once per run: the inventory validated
(``_model.load_fleet``), the policy documents parsed, and the fleet's
policy computed (``engine.compute``), starting from the persistent cache
of the previous run. palisade.ebpf.fleet_state turns the result into every
host's share and wants (``fleet_state``); palisade.ebpf.policy_trace
answers probes from the same computation (``trace``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import os
from collections import namedtuple

from ansible_collections.palisade.ebpf.plugins.module_utils import _artifact as artifact
from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import unpack_ipcache
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _inventory as inventory_mod
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _shares as shares_mod
from ansible_collections.palisade.ebpf.plugins.plugin_utils import _want as want_mod
from ansible_collections.palisade.ebpf.plugins.plugin_utils._model import InventoryError, load_fleet
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import engine, ir, parse
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import files as policy_files
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import trace as trace_mod
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import persist
from ansible_collections.palisade.ebpf.plugins.plugin_utils._render import haproxy as haproxy_render
from ansible_collections.palisade.ebpf.plugins.plugin_utils._shares import host_shares, reach_routes
from ansible_collections.palisade.ebpf.plugins.plugin_utils._store import ShareStore, canonical

# Node addresses for hosts that only appear in what-if endpoints: from the
# reserved 240.0.0.0/4, which no real node or endpoint uses.
_PLACEHOLDER_NODES = ipaddress.IPv4Network("240.0.0.0/4")

# One computation: the fleet model, the parsed rules and the FleetPolicy.
Computation = namedtuple("Computation", "fleet rules policy")


class FleetError(ValueError):
    """Input the computation cannot take; the message is one line, for the task."""


def cache_name(raw_hosts):
    """The persistent cache of a fleet, named by its hosts that declare a
    node: two inventories used from one controller do not keep replacing
    each other's state. Known before validation, so that ``load_fleet`` can
    reuse the cached records."""
    names = sorted(host for host, variables in raw_hosts.items() if variables[inventory_mod.NODE_VAR] is not None)
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]


def compute(raw_hosts, namespaces, documents, cache=None):
    """A Computation for ``raw_hosts`` ({host: {palisade_node,
    palisade_endpoints}}), ``namespaces`` and ``documents`` (a function
    returning [(origin, policy document)], called once the inventory is
    valid); ``cache``: an engine.PersistentCache, or None. Raises FleetError."""
    try:
        fleet = load_fleet(raw_hosts, namespaces, cache=cache.model_cache() if cache is not None else None)
    except InventoryError as exc:
        raise FleetError("invalid inventory: %s" % exc)
    try:
        rules = parse.parse_documents(documents(), memo=cache.parse_memo() if cache is not None else None)
    except ir.PolicyError as exc:
        raise FleetError(str(exc))
    return Computation(fleet, rules, engine.compute(fleet, rules, cache=cache))


def store_path(cache_dir, name):
    """Where the shares of the fleet ``name`` are kept (beside its cache)."""
    return os.path.join(cache_dir or persist.default_path(), "shares-%s" % name)


def fleet_state(raw_hosts, namespaces, documents, prefixes, use_cache=True, cache_dir=None):
    """palisade.ebpf.fleet_state's result and the warnings to show:
    ``prefixes`` maps host -> lab prefix; with ``use_cache`` the computation
    starts from (and saves) the cache in ``cache_dir`` (default:
    persist.default_path()). The shares go to the share store there
    (_store.py), with or without the cache."""
    # The whole run with the cyclic collector paused: see state.controller_run.
    with engine.controller_run():
        name = cache_name(raw_hosts)
        cache = engine.PersistentCache(cache_dir, name) if use_cache else None
        done = compute(raw_hosts, namespaces, documents, cache)
        warnings = []
        if cache is not None:
            try:
                cache.save()
            except OSError as exc:  # a cache that cannot be written only costs time
                warnings.append("cannot write the policy cache in %s: %s" % (cache.path, exc))
        warnings.extend(done.policy.warnings)
        store = ShareStore(store_path(cache_dir, name))
        try:
            return state_result(done, prefixes, store), warnings
        except OSError as exc:  # without its shares no host can be configured
            raise FleetError("cannot write the share store in %s: %s" % (store.root, exc))


def _share_code_digest():
    """The code a share object comes from: the policy computation's, and the
    share and want builders'."""
    if not _SHARE_CODE:
        digest = hashlib.sha256(persist.code_digest().encode("utf-8"))
        for module in (shares_mod, want_mod, haproxy_render):
            with open(module.__file__, "rb") as handle:
                digest.update(handle.read())
        _SHARE_CODE.append(digest.hexdigest())
    return _SHARE_CODE[0]


_SHARE_CODE = []


# Earlier versions of a host's artifacts the controller keeps deltas from: a
# host that missed more runs than this gets the full document.
ARTIFACT_HISTORY = 3


class FlatPolicies:
    """Each distinct policy flattened for the datapath once, kept as a store
    object (``_want.flat_policy``), with the peers its rows name. Policies
    are shared by many hosts, so a host's artifact names them instead of
    holding them (a host's policies are megabytes at fleet size). A policy's
    reference digests everything it depends on, so ``known`` (the last
    run's {ref: [object name, peers]}, for the same code) stays valid."""

    def __init__(self, store, known):
        self.store = store
        self.known = known
        self.used = {}

    def get(self, ref, output):
        found = self.used.get(ref)
        if found is None:
            found = self.known.get(ref)
            if not (isinstance(found, list) and len(found) == 2 and self.store.has(found[0])):
                flat = want_mod.flat_policy(output)
                found = [self.store.put(flat), want_mod.policy_peers(flat)]
            self.used[ref] = found
        return found


def host_document(share, identities, flat):
    """The artifact a host's datapath keeps of its own state (see
    module_utils/_artifact.py): its endpoints, the names of the flat policy
    objects they use (``flat``: a FlatPolicies), the labels of the
    identities those mention, its own IP table rows."""
    endpoints = want_mod.datapath_endpoints(share)
    policies, used = {}, set(ep["identity"] for ep in endpoints)
    for ref, output in (share.get("policies") or {}).items():
        name, peers = flat.get(ref, output)
        policies[ref] = name
        used.update(peers)
    return {"endpoints": dict((ep["key"], ep) for ep in endpoints), "policies": policies,
            "identities": want_mod.used_identities(identities, used),
            "overrides": dict(share.get("ipcache_overrides") or {})}


def _history(current, earlier, store):
    """``current`` then the earlier versions still in the store, newest first."""
    return [current] + [name for name in earlier if name != current and store.has(name)][:ARTIFACT_HISTORY - 1]


def _index(store):
    known = store.index()
    if not isinstance(known.get("shares"), dict) or known.get("code") != _share_code_digest():
        # none yet, an older layout or other code: rebuild
        return {"shares": {}, "hosts": {}, "tables": {}, "table_history": [], "deltas": {}, "flat": {}}
    return known


def _write_shares(shares, prefixes, store, known, identities, flat):
    """({host: {share, endpoints, l7proxy, datapath}}, the index parts to
    keep, every object name the shares use).

    A share is stored without its policies' content: each policy is an
    object of its own, named in the share by reference, and shared by every
    host whose endpoints use it. A share is a function of its endpoints,
    its policies' references (each a digest of everything the policy
    depends on), its lab prefix and the code; digested, that is the key of
    an index to the objects written last time, which are reused instead of
    rebuilt and re-serialized (the bulk of a run's cost at a thousand hosts).
    ``datapath`` lists the versions of the host's own datapath artifact,
    current first, then the earlier ones a delta can start from."""
    index, hosts, host_keys, policy_names = {}, {}, {}, {}
    code = _share_code_digest()
    proxy = want_mod.ProxyWants()

    def policy_name(ref, output):
        if ref not in policy_names:
            policy_names[ref] = store.put(output)
        return policy_names[ref]

    for host, share in shares.items():
        key = hashlib.sha256(canonical([code, prefixes.get(host), dict(share, policies=sorted(share["policies"]))])).hexdigest()
        entry = known["shares"].get(key)
        if not (isinstance(entry, list) and len(entry) == 4
                and all(store.has(n) for n in [entry[0]] + list(entry[1]) + list(entry[3][:1]))):
            want = share["l7proxy"] = proxy.want_or_error(share)
            document = store.put(host_document(share, identities, flat))
            earlier = known["shares"].get(known["hosts"].get(host)) or [None, None, None, []]
            policies = {ref: policy_name(ref, output) for ref, output in share["policies"].items()}
            entry = [store.put(dict(share, policies=policies)), sorted(set(policies.values())),
                     "error" if "error" in want else ("some" if want["endpoints"] else "none"),
                     _history(document, earlier[3] if isinstance(earlier[3], list) else [], store)]
        else:
            for ref, output in share["policies"].items():
                flat.get(ref, output)  # still in use: kept
        index[key] = entry
        host_keys[host] = key
        hosts[host] = {"share": entry[0], "endpoints": len(share["endpoints"]), "l7proxy": entry[2],
                       "datapath": entry[3]}
    names = [name for entry in index.values() for name in [entry[0]] + entry[1] + entry[3]]
    return hosts, {"shares": index, "hosts": host_keys}, names


def _flat_index(flat, known):
    """The flat policies to remember: this run's, and those of the previous
    ARTIFACT_HISTORY - 1 runs that this run does not use, so that a policy a
    host held a run or two ago can still be the base of a derived one
    (_transfer.py); older ones are only an optimisation lost."""
    keep = dict(flat.used)
    runs = [sorted(flat.used)] + [run for run in known.get("flat_runs") or [] if isinstance(run, list)]
    runs = runs[:ARTIFACT_HISTORY]
    old = known.get("flat") or {}
    for run in runs[1:]:
        for ref in run:
            if ref not in keep and ref in old:
                keep[ref] = old[ref]
    return keep, runs


def _fleet_table(packed_name, store, known):
    """The fleet's IP table as a versioned artifact: (its version, {earlier
    version: delta object}, the index parts to keep). The table comes packed
    (one string, what a host gets in full) and is versioned as the document
    {"ipcache": {prefix: identity}}, which is what a host rebuilds and checks;
    deltas from the last ARTIFACT_HISTORY - 1 versions are computed once
    here, not once per host."""
    tables = dict(known["tables"])
    version = tables.get(packed_name)
    document = None
    if version is None or not store.has(version):
        document = {"ipcache": dict(unpack_ipcache(store.get(packed_name)))}
        version = store.put(document)
    tables = {packed_name: version}
    history = _history(version, known["table_history"], store)
    deltas = {}
    for old in history[1:]:
        key = "%s:%s" % (old, version)
        name = known["deltas"].get(key)
        if not (name and store.has(name)):
            if document is None:
                document = store.get(version)
            name = store.put(artifact.diff(store.get(old), document))
        deltas[old] = name
    return version, deltas, {"tables": tables, "table_history": history,
                             "deltas": dict(("%s:%s" % (old, version), name) for old, name in deltas.items())}


def state_result(done, prefixes, store):
    """{hosts, objects, store, summary} (plugins/modules/fleet_state.py,
    RETURN): every host's share and the fleet-wide objects are written to
    ``store`` (a _store.ShareStore); the result names them."""
    fleet, policy = done.fleet, done.policy
    table = policy.table
    shares = host_shares(fleet, prefixes, policy, routes=False)
    identities = {str(n): table.describe(n) for n in sorted(table.numbers())
                  if n in table.endpoint_numbers or n in table.cidr_numbers}
    objects = {
        "ipcache_packed": store.put(want_mod.pack_shared_ipcache(policy.ipcache_shared())),
        "routes": store.put(reach_routes(fleet)),
        "identities": store.put(identities),
    }
    known = _index(store)
    objects["fleet_table"], objects["fleet_table_deltas"], table_index = _fleet_table(
        objects["ipcache_packed"], store, known)
    flat = FlatPolicies(store, known.get("flat") or {})
    hosts, shares_index, names = _write_shares(shares, prefixes, store, known, identities, flat)
    flat_index, flat_runs = _flat_index(flat, known)
    index = dict(table_index, flat=flat_index, flat_runs=flat_runs, code=_share_code_digest(), **shares_index)
    if index != known:
        store.save_index(index)
    store.keep([objects["ipcache_packed"], objects["routes"], objects["identities"]] + table_index["table_history"]
               + list(objects["fleet_table_deltas"].values()) + names
               + [entry[0] for entry in index["flat"].values()])
    return {
        "hosts": hosts,
        "objects": objects,
        "store": store.root,
        "summary": {
            "nodes": len(fleet["nodes"]),
            "endpoints": sum(len(n["endpoints"]) for n in fleet["nodes"].values()),
            "namespaces": sorted(fleet["namespaces"]),
            "rules": len(done.rules),
            "identities": len(table.endpoint_numbers),
            "policy_computation": policy.stats["mode"],
            "objects_written": store.written,
        },
    }


# --- policy_trace -------------------------------------------------------------------

def what_if_hosts(endpoints, nodes):
    """Raw host variables for ``endpoints`` given to a trace, each with a
    ``host``: every inventory node (``nodes``: {host: palisade_node}) keeps
    its address (so that node addresses resolve to host / remote-node) and
    gets only the endpoints given for it; other hosts get a placeholder
    address."""
    if not isinstance(endpoints, list):
        raise FleetError("endpoints: must be a list of endpoints, each with a 'host'")
    raw = {host: {inventory_mod.NODE_VAR: dict(node), inventory_mod.ENDPOINTS_VAR: []} for host, node in nodes.items()}
    used = {str(ep.get("ipv4")) for ep in endpoints if isinstance(ep, dict)}
    used.update(str(node.get("ipv4")) for node in nodes.values() if isinstance(node, dict))
    placeholders = (str(a) for a in _PLACEHOLDER_NODES.hosts() if str(a) not in used)
    for index, endpoint in enumerate(endpoints):
        if not isinstance(endpoint, dict) or not isinstance(endpoint.get("host"), str) or not endpoint["host"]:
            raise FleetError("endpoints[%d]: must be a mapping with a 'host' (the inventory host it lives on)" % index)
        host = endpoint["host"]
        if host not in raw:
            raw[host] = {inventory_mod.NODE_VAR: {"ipv4": next(placeholders)}, inventory_mod.ENDPOINTS_VAR: []}
        raw[host][inventory_mod.ENDPOINTS_VAR].append({k: v for k, v in endpoint.items() if k != "host"})
    return raw


def _given_documents(policies):
    def read():
        return policy_files.documents_from_policies(policies, "policies")
    return read


def trace(probes, inventory, namespaces, documents, what_if=None):
    """policy_trace's results for ``probes`` (a list of probes), from
    ``inventory`` (an _inventory.Inventory), its ``namespaces`` and policy
    ``documents`` (as ``compute`` takes them), unless ``what_if`` (the
    task's ``endpoints``, ``namespaces`` and ``policies``) gives some of
    them. The inventory's own fleet starts from fleet_state's cache
    (validated hosts, and a no-op update when nothing changed) and leaves it
    as it was; what-if inputs are computed apart. Raises FleetError."""
    if probes is None:
        raise FleetError("probes: required, a list of {from, to, port, protocol, http}")
    what_if = {k: v for k, v in (what_if or {}).items() if v is not None}
    if "namespaces" in what_if:
        namespaces = what_if["namespaces"]
    if "endpoints" in what_if:
        raw_hosts = what_if_hosts(what_if["endpoints"], inventory.nodes())
    else:
        raw_hosts = inventory.raw_hosts()
    if "policies" in what_if:
        documents = _given_documents(what_if["policies"])
    with engine.controller_run():
        cache = engine.PersistentCache(None, cache_name(raw_hosts)) if not what_if else None
        done = compute(raw_hosts, namespaces, documents, cache)
        try:
            return trace_mod.trace(done.policy, probes)
        except trace_mod.TraceError as exc:
            raise FleetError(str(exc))
