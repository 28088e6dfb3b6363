# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The L7 redirect's netfilter fallback: an nftables TPROXY rule handing
flows marked for the proxy (0x200 under 0xf00) to its transparent listener,
instead of the sk_lookup program (settings.l7_tproxy). For kernels or hosts
where an SK_LOOKUP program cannot be attached; on this datapath's minimum
kernel (5.11) sk_lookup is always there, so this is the operator's choice.

Want / have / diff over one object, the table ``ip palisade_l7`` of the
host's network namespace, through libnftables (Debian python3-nftables). A
table that differs in any way is replaced in one atomic batch.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.errors import DatapathError
from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import L7_MARK, L7_MARK_MASK

TABLE = "palisade_l7"
COMMENT = "palisade.ebpf L7 redirect to 127.0.0.1:%d"


def _nft():
    try:
        import nftables  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise DatapathError("settings.l7_tproxy needs libnftables for the managed host's Python "
                            "(Debian: apt-get install python3-nftables)")
    handle = nftables.Nftables()
    handle.set_json_output(True)
    return handle


def _want_rule(port):
    return ("meta l4proto tcp meta mark & 0x%08x == 0x%08x tproxy ip to 127.0.0.1:%d comment \"%s\""
            % (L7_MARK_MASK, L7_MARK, port, COMMENT % port))


def _have(nft):
    """(table exists, the rules of its prerouting chain as JSON objects)."""
    rc, out, dummy = nft.cmd("list table ip %s" % TABLE)
    if rc != 0:
        return False, None
    chains, rules = {}, []
    for item in json.loads(out).get("nftables", []):
        if "chain" in item:
            chains[item["chain"]["name"]] = item["chain"]
        elif "rule" in item:
            rules.append(item["rule"])
    chain = chains.get("prerouting")
    if set(chains) != {"prerouting"} or chain.get("hook") != "prerouting" or chain.get("type") != "filter":
        return True, None
    return True, rules


def _matches(rules, port):
    if rules is None or len(rules) != 1:
        return False
    rule = rules[0]
    text = json.dumps(rule.get("expr"), sort_keys=True)
    return rule.get("comment") == COMMENT % port and '"tproxy"' in text and '"port": %d' % port in text


class Tproxy(object):
    """Plan on construction (``line`` None when nothing differs); apply().
    ``present``: the table exists (whatever it holds)."""

    def __init__(self, wanted, port):
        self.wanted = wanted
        self.port = port
        self.line = None
        self.kind = None
        self.present = False
        if not wanted:
            try:
                exists, dummy = _have(_nft())
            except DatapathError:
                return  # no libnftables: there cannot be a table of ours either
            self.present = exists
            if exists:
                self.kind, self.line = "remove", "- nft table ip %s (L7 TPROXY)" % TABLE
            return
        exists, rules = _have(_nft())
        self.present = exists
        if not exists:
            self.kind, self.line = "create", "+ nft table ip %s: TPROXY marked flows to 127.0.0.1:%d" % (TABLE, port)
        elif not _matches(rules, port):
            self.kind, self.line = "replace", "~ nft table ip %s: TPROXY marked flows to 127.0.0.1:%d" % (TABLE, port)

    def apply(self):
        nft = _nft()
        if self.kind == "remove":
            batch = "delete table ip %s" % TABLE
        else:
            batch = "\n".join([
                "add table ip %s" % TABLE,
                "delete table ip %s" % TABLE,
                "add table ip %s" % TABLE,
                "add chain ip %s prerouting { type filter hook prerouting priority mangle; policy accept; }" % TABLE,
                "add rule ip %s prerouting %s" % (TABLE, _want_rule(self.port)),
            ])
        rc, dummy, err = nft.cmd(batch)
        if rc != 0:
            raise DatapathError("cannot %s the nft table ip %s: %s" % (self.kind, TABLE, " ".join(err.split())))
