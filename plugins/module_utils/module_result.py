# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the reconciling modules hand a reconciler's result to Ansible."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def exit_reconciled(module, result):
    """Warnings as task warnings; the reconciler's "lines" (one per change,
    +/-/~) as the --diff text; then exit with the rest of the result."""
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if module._diff and result.get("lines"):
        result["diff"] = {"prepared": "\n".join(result["lines"]) + "\n"}
    module.exit_json(**result)
