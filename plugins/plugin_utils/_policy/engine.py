# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's policy, computed once per run on the controller.

``compute(fleet, rules, cache=None)`` returns a ``FleetPolicy``: each host
takes its share from it (``host_share``), ``trace`` takes verdicts from it.
The computation itself is state.py; with a ``PersistentCache`` (persist.py)
a run starts from the previous run's state and recomputes only what the
inventory and policy changes touch.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.module_utils import _naming as naming
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import identity as ident
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import persist
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import selectorcache as sc
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import state as state_mod

# The controller-side cache that ``compute`` takes (part of this API).
PersistentCache = persist.PersistentCache
# Wraps a whole controller run (see state.controller_run; part of this API).
controller_run = state_mod.controller_run


# --- the result ---------------------------------------------------------------------

class FleetPolicy:
    """One run's result: ``fleet`` (the inventory model) with its ``state``."""

    def __init__(self, fleet, state):
        self.fleet = fleet
        self.state = state
        self._by_key = None
        self._by_address = None
        self._outputs = {}           # DirectionPolicy -> host-share form
        self._subject_outputs = {}   # SubjectPolicy reference -> host-share form
        self._by_subject = {}        # (identity, port map id) -> (reference, host-share form)
        self._l4_outputs = {}        # block -> host-share form

    @property
    def table(self):
        return self.state.table

    @property
    def cache(self):
        return self.state.cache

    @property
    def distiller(self):
        return self.state.distiller

    @property
    def stats(self):
        s = self.state
        return dict(s.last_run, identities=len(s.table), endpoint_identities=len(s.table.endpoint_numbers),
                    subjects=len(s.distiller.subjects), direction_policies=len(s.distiller.policies),
                    selections=len(s.cache.keys()), rules=len(s.repository.digests),
                    selector_evaluations=s.cache.evaluations, selector_lookups=s.cache.lookups)

    # --- endpoints -----------------------------------------------------------

    def _index(self):
        if self._by_key is None:
            by_key, by_address = {}, {}
            for host, node in self.fleet["nodes"].items():
                state = self.state.hosts[host]
                for i, ep in enumerate(node["endpoints"]):
                    record = {"key": naming.endpoint_key(ep), "host": host, "index": i,
                              "name": ep["name"], "namespace": ep["namespace"], "ipv4": ep["ipv4"],
                              "labels": ep["labels"], "ports": ep["ports"], "identity": state.numbers[i]}
                    by_key[record["key"]] = record
                    by_address[state.addresses[i]] = record
            self._by_key, self._by_address = by_key, by_address
        return self._by_key, self._by_address

    def endpoint(self, key):
        """The endpoint ``namespace/name`` (with host and identity), or None."""
        return self._index()[0].get(key)

    def endpoint_at(self, address):
        """The endpoint with this address (int), or None."""
        return self._index()[1].get(address)

    def subject_policy(self, key):
        """The SubjectPolicy (ingress, egress) of endpoint ``namespace/name``."""
        record = self.endpoint(key)
        if record is None:
            raise KeyError("no endpoint %s" % key)
        host_state = self.state.hosts[record["host"]]
        index = record["index"]
        return self.distiller.subjects[(host_state.numbers[index], host_state.port_maps[index])]

    # --- the IP -> identity table -------------------------------------------

    def lookup(self, host, address):
        """The identity ``address`` (int) resolves to on ``host``: the longest
        prefix of that host's IP table, as the datapath looks it up."""
        record = self.endpoint_at(address)
        if record is not None:
            return record["identity"]
        for node_host, host_state in self.state.hosts.items():
            if host_state.address == address:
                return ident.HOST if node_host == host else ident.REMOTE_NODE
        best, found = -1, ident.WORLD
        for prefix, number in self.table.by_prefix.items():
            if prefix[1] > best and ident.address_in(prefix, address):
                best, found = prefix[1], number
        return found

    def ipcache_shared(self):
        """The IP table every host shares: endpoint /32s, 0.0.0.0/0 as
        world, the policy CIDRs, and every node address as remote-node.
        One dict, kept up to date by the computation; do not modify it."""
        return self.state.ipcache

    def ipcache_overrides(self, host):
        """How ``host``'s view differs from ``ipcache_shared``: its own node
        address is ``host`` there (the hosts apply it: _want.host_ipcache)."""
        return {ident.format_address(self.state.hosts[host].address) + "/32": ident.HOST}

    # --- host shares ----------------------------------------------------------

    def direction_output(self, policy):
        """A DirectionPolicy in host-share form, shared by every host using
        it: ``{"enforced": bool, "enforced_by": [rule names], "entries":
        [{"peers": [identity, ...], "l4": [[protocol, lo, hi, deny, http,
        names], ...]}, ...]}``, one entry per group of peers (0 = any) that
        get the same L4 entries; the sequences inside entries are tuples."""
        found = self._outputs.get(policy)
        if found is None:
            l4_outputs = self._l4_outputs
            entries = []
            for block, members in policy.groups.items():
                l4 = l4_outputs.get(block)
                if l4 is None:
                    l4 = l4_outputs[block] = tuple((protocol, lo, hi, deny, _http_output(http), names)
                                                   for protocol, lo, hi, deny, http, names in block)
                entries.append({"peers": tuple(members), "l4": l4})
            entries.sort(key=lambda e: e["peers"][0])
            # Tuples, so that Ansible's per-host copy of a registered result
            # (which copies dicts and lists) shares them between hosts.
            found = self._outputs[policy] = {
                "enforced": policy.enforced, "enforced_by": list(policy.enforced_by), "entries": tuple(entries)}
        return found

    def policy_output(self, subject):
        """Both directions in host-share form, one dict per reference (a
        digest of the content): most hosts share most of their subjects."""
        ref = subject.ref
        found = self._subject_outputs.get(ref)
        if found is None:
            found = self._subject_outputs[ref] = {"ingress": self.direction_output(subject.ingress),
                                                  "egress": self.direction_output(subject.egress)}
        return found

    def _subject_output(self, number, port_map):
        """(reference, host-share form) of a subject, looked up once per
        run: every host asks again for the subjects it shares with others."""
        key = (number, port_map)
        found = self._by_subject.get(key)
        if found is None:
            subject = self.distiller.subjects[key]
            found = self._by_subject[key] = (subject.ref, self.policy_output(subject))
        return found

    def host_share(self, host):
        """``host``'s share: its endpoints with identity and policy reference,
        the distinct policies they use, and the IP table: ``ipcache`` (shared
        by every host) with ``ipcache_overrides`` applied is this host's view."""
        host_state = self.state.hosts[host]
        endpoints, policies = [], {}
        subject_output = self._subject_output
        for ep, number, port_map in zip(self.fleet["nodes"][host]["endpoints"], host_state.numbers,
                                        host_state.port_maps):
            ref, output = subject_output(number, port_map)
            endpoints.append({"name": ep["name"], "namespace": ep["namespace"], "ipv4": ep["ipv4"],
                              "identity": number, "policy": ref})
            policies[ref] = output
        return {"endpoints": endpoints, "policies": policies, "ipcache": self.ipcache_shared(),
                "ipcache_overrides": self.ipcache_overrides(host)}

    @property
    def warnings(self):
        """Collisions and ipBlocks only partly covering an identity."""
        found = ["identity %d: label set %s collided with %s; took rehash #%d"
                 % (c.number, c.text, c.holder, c.attempt) for c in self.table.collisions]
        for key, numbers in sorted(self.cache.partial.items(), key=lambda kv: sc.key_text(kv[0])):
            for number in sorted(numbers):
                found.append("%s: only some endpoints of identity %d (%s) lie inside it; the identity is not selected"
                             % (sc.key_text(key), number, self.table.describe(number)))
        return found


def _http_output(http):
    if http is None:
        return None
    return tuple({"method": r.method, "path": r.path, "host": r.host, "headers": tuple(r.headers or ()),
                  "header_matches": tuple({"name": m.name, "value": m.value, "mismatch": m.mismatch}
                                          for m in r.header_matches or ())}
                 for r in http)


def compute(fleet, rules, cache=None):
    """The fleet's policy for ``fleet`` (model.load_fleet) and ``rules``
    (parse.parse_documents). ``cache``: a PersistentCache, or None."""
    if cache is not None:
        return FleetPolicy(fleet, cache.compute(fleet, rules))
    return FleetPolicy(fleet, state_mod.compute_full(fleet, rules))
