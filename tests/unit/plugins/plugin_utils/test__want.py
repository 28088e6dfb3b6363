# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's share of the policy -> the datapath module's input (plugin_utils/_want.py)."""

from __future__ import absolute_import, division, print_function

from ansible_collections.palisade.ebpf.plugins.module_utils._datapath.state import unpack_ipcache
from ansible_collections.palisade.ebpf.plugins.plugin_utils._want import datapath_state


def test_share_to_datapath_state_flattens_and_packs():
    share = {
        "enforcement": [{"key": "default/web", "ifname": "lxc1", "ipv4": "10.1.1.10", "identity": 300, "policy": "p"}],
        "policies": {"p": {
            "ingress": {"enforced": True, "enforced_by": ["default/r"], "entries": [
                {"peers": [301, 302], "l4": [[6, 80, 80, False, None, ["default/r"]],
                                             [6, 8080, 8080, False, [{"method": "GET"}], ["default/r"]]]},
                {"peers": [0], "l4": [[17, 53, 53, True, None, ["default/d"]]]}]},
            "egress": {"enforced": False, "enforced_by": [], "entries": []}}},
        "ipcache_overrides": {"192.0.2.11/32": 1},
    }
    state = datapath_state(share, {"10.1.1.10/32": 300, "192.0.2.11/32": 6}, "/sys/fs/bpf/palisade/x",
                           {"300": "k8s:app=web", "999": "k8s:app=unused"}, packed=True)
    assert state["policies"]["p"]["ingress"] == {"enforced": True, "entries": [
        [0, 17, 53, 53, "deny"], [301, 6, 80, 80, "allow"], [301, 6, 8080, 8080, "redirect"],
        [302, 6, 80, 80, "allow"], [302, 6, 8080, 8080, "redirect"]]}
    assert unpack_ipcache(state["ipcache_packed"]) == [["10.1.1.10/32", 300], ["192.0.2.11/32", 1]]
    assert state["identities"] == {"300": "k8s:app=web"} and "ipcache" not in state
