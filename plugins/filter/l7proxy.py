# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""l7proxy_state, l7proxy_map_text, l7proxy_quote: a host's HAProxy
configuration data from palisade.ebpf.fleet_state's registered result."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.plugin_utils._render.haproxy import hap_quote, map_text, proxy_want


def l7proxy_state(fleet_state, host):
    """proxy_want of ``host``'s share (see module_utils/l7proxy/config.py)."""
    return proxy_want(fleet_state["hosts"][host])


class FilterModule(object):

    def filters(self):
        return {"l7proxy_state": l7proxy_state, "l7proxy_map_text": map_text, "l7proxy_quote": hap_quote}
