# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy documents to the IR (ir.Rule), validated.

``parse_documents(docs)`` takes ``[(origin, document), ...]`` -- documents as
users write them for Kubernetes and Cilium: cilium.io/v2
CiliumNetworkPolicy (``spec`` and/or ``specs``), CiliumClusterwideNetworkPolicy
and networking.k8s.io/v1 NetworkPolicy -- and returns the ir.Rules, each
kind's semantics applied (see parse_cilium and parse_knp, and
docs/policy-engine.md). Any invalid input raises ir.PolicyError with a
one-line message naming the origin, the policy and the field path; no other
exception escapes for any document content.

The result is canonical: every IR tuple is sorted and free of duplicates,
and the rules are ordered by kind, name and position, so neither document
order nor key or list order changes it (equivalent documents give equal
rules, origins aside). Pure and stdlib-only: modules may import it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import pickle

from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy import parse_cilium, parse_knp
from ansible_collections.palisade.ebpf.plugins.plugin_utils._policy.parse_common import Doc, child, q, type_name

CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"
KNP = "NetworkPolicy"
API_VERSIONS = {CNP: "cilium.io/v2", CCNP: "cilium.io/v2", KNP: "networking.k8s.io/v1"}
KINDS = (CNP, CCNP, KNP)

# ``status`` is accepted (and ignored) so that `kubectl get -o yaml` output works.
TOP_FIELDS = {
    CNP: ("apiVersion", "kind", "metadata", "spec", "specs", "status"),
    CCNP: ("apiVersion", "kind", "metadata", "spec", "specs", "status"),
    KNP: ("apiVersion", "kind", "metadata", "spec", "status"),
}
# ObjectMeta: name, namespace, labels and annotations are checked; the fields
# the API server sets are accepted and ignored.
METADATA_FIELDS = (
    "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields",
    "ownerReferences", "finalizers", "generateName", "selfLink",
)
DEFAULT_NAMESPACE = "default"


class ParseMemo:
    """Parsed documents of the last successful ``parse_documents``, keyed by
    a digest of (origin, document): an unchanged document is not parsed
    again. Only documents that parsed are kept, so an invalid one is parsed
    (and rejected) every time; the check for duplicates runs every time."""

    def __init__(self, parsed=None):
        self.parsed = parsed or {}   # digest -> (key, display name, [(position, rule)])
        self.changed = False         # the last parse changed ``parsed`` (so it needs saving)


def document_digest(origin, document):
    """A digest of one document and its origin; None when it cannot be
    digested (it is then simply parsed)."""
    try:
        data = pickle.dumps((origin, document), protocol=4)
    except Exception:  # pylint: disable=broad-except  # odd objects in a document: parse instead
        return None
    return hashlib.sha1(data).digest()


def parse_documents(docs, memo=None):
    """``[(origin, document)]`` -> [ir.Rule]; raises ir.PolicyError.
    ``memo``: a ParseMemo, or None."""
    parsed, seen, kept = [], {}, {}
    for origin, document in docs:
        digest = document_digest(origin, document) if memo is not None else None
        doc = Doc(origin)
        found = memo.parsed.get(digest) if digest is not None else None
        if found is None:
            key, rules = _document(doc, document)
            found = (key, doc.name, rules)
        elif found[0] in seen:
            _document(doc, document)  # only for the error below to name the document as without memo
        key, name, rules = found
        if key in seen:
            doc.fail("metadata.name", "defined twice: here and at %s (kind, namespace and name must be unique)" % seen[key])
        seen[key] = origin
        if digest is not None:
            kept[digest] = found
        parsed.extend(((key[0], name, pos), rule) for pos, rule in rules)
    parsed.sort(key=lambda item: item[0])
    if memo is not None:
        memo.changed = kept.keys() != memo.parsed.keys()
        memo.parsed = kept
    return [rule for dummy, rule in parsed]


def _document(doc, raw):
    if not isinstance(raw, dict):
        doc.fail("document", "a policy document must be a mapping, got %s" % type_name(raw))
    kind = raw.get("kind")
    if kind is None:
        doc.fail("kind", "required: one of %s" % ", ".join(KINDS))
    if not isinstance(kind, str) or kind not in KINDS:
        doc.fail("kind", "%s is not a supported kind (one of %s)" % (q(kind), ", ".join(KINDS)))
    doc.kind = kind

    # The name first, so that every later error can name the policy.
    metadata = raw.get("metadata")
    if metadata is None:
        doc.fail("metadata", "required (with a name)")
    if not isinstance(metadata, dict):
        doc.fail("metadata", "must be a mapping, got %s" % type_name(metadata))
    if metadata.get("name") is None:
        doc.fail("metadata.name", "required")
    name = doc.dns_subdomain("metadata.name", metadata["name"])
    doc.name = name
    namespace = metadata.get("namespace")
    if kind == CCNP:
        if namespace not in (None, ""):
            doc.fail("metadata.namespace", "a CiliumClusterwideNetworkPolicy is not namespaced; remove metadata.namespace")
        namespace = None
    else:
        namespace = DEFAULT_NAMESPACE if namespace in (None, "") else doc.dns_label("metadata.namespace", namespace)
        doc.name = "%s/%s" % (namespace, name)
    doc.mapping("metadata", metadata, METADATA_FIELDS)
    _metadata_maps(doc, metadata)
    api = raw.get("apiVersion")
    if api != API_VERSIONS[kind]:
        doc.fail("apiVersion", "must be %s for %s, got %s" % (API_VERSIONS[kind], kind, q(api)))
    doc.mapping("", raw, TOP_FIELDS[kind])

    if kind == KNP:
        rules = [(-1, parse_knp.parse_rule(doc, raw, namespace, kind, doc.origin))]
    else:
        rules = parse_cilium.parse_rules(doc, raw, namespace, kind, doc.origin)
    return (kind, namespace, name), rules


def _metadata_maps(doc, metadata):
    for field in ("labels", "annotations"):
        value = metadata.get(field)
        if value is None:
            continue
        path = "metadata.%s" % field
        if not isinstance(value, dict):
            doc.fail(path, "must be a mapping, got %s" % type_name(value))
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            kpath = child(path, key)
            doc.label_key(kpath, key)
            if field == "labels":
                doc.label_value(kpath, value[key])
            else:
                doc.string(kpath, value[key])
