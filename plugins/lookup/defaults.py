# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: defaults
short_description: The collection's defaults, from the one place they are defined
version_added: 0.2.0
description:
  - Returns the default of each named setting, as defined in the collection's
    C(plugins/module_utils/_defaults.py); the roles' defaults read them here,
    so a default is defined once. docs/settings.md lists them all.
  - C(lab_prefix) is E(PALISADE_LAB_PREFIX) of the controller when it is set.
author:
  - palisade.ebpf developers (@palisade-ebpf)
options:
  _terms:
    description: Names of settings.
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: The route protocol that marks the collection's routes and rules
  ansible.builtin.debug:
    msg: "{{ lookup('palisade.ebpf.defaults', 'route_protocol') }}"
"""

RETURN = r"""
_raw:
  description: The defaults, in the order of the terms.
  type: list
  elements: raw
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import DEFAULTS


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        values = []
        for term in terms:
            if term not in DEFAULTS:
                raise AnsibleLookupError("palisade.ebpf.defaults: unknown setting %r (known: %s)"
                                         % (term, ", ".join(sorted(DEFAULTS))))
            if term == "lab_prefix" and os.environ.get("PALISADE_LAB_PREFIX"):
                values.append(os.environ["PALISADE_LAB_PREFIX"])
            else:
                values.append(DEFAULTS[term])
        return values
