# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""l7proxy_map_text, l7proxy_quote: HAProxy map files and configuration
words (plugin_utils/_render/haproxy.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.palisade.ebpf.plugins.plugin_utils._render.haproxy import hap_quote, map_text


class FilterModule(object):

    def filters(self):
        return {"l7proxy_map_text": map_text, "l7proxy_quote": hap_quote}
