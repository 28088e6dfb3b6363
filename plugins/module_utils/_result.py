# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one result shape of the collection's reconciling modules.

Every module that reconciles state on a host (endpoint, ip_route, ip_rule,
datapath, l7proxy, lab) returns, in the spirit of ansible.netcommon's
resource modules:

``changed``
    whether anything was (or, in check mode, would be) written.
``before`` / ``after``
    the objects the module owns, before and after the run (``after`` is
    predicted in check mode and read back from the kernel otherwise), in the
    module's own input schema where that is small enough to list; a module
    whose objects are too many to list (the datapath's maps) returns a
    summary instead (``summarised``) and says so in its RETURN documentation.
``changes``
    the exact writes, one line each, in the order they were (or would be)
    made: ``+`` adds, ``-`` removes, ``~`` changes in place.
``diff``
    with ``--diff`` only: ``before``/``after`` as text, one object per line,
    under a header naming what the lines are, and ``prepared``, the
    ``changes`` lines.
``gathered``
    with ``state: gathered`` (where the module offers it): the kernel's
    current objects in the module's input schema; nothing is written and
    ``changed`` is false.

Warnings travel in ``warnings`` until ``exit_reconciled`` hands them to
``module.warn``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _text(lines):
    return "".join("%s\n" % line for line in lines)


def _result(changed, before, after, changes, header, before_lines, after_lines, warnings, extra):
    result = dict(extra)
    result.update(
        changed=bool(changed),
        before=before,
        after=after,
        changes=list(changes),
        warnings=list(warnings),
        diff={
            "before": _text(before_lines),
            "after": _text(after_lines),
            "before_header": header,
            "after_header": header,
        },
    )
    return result


def reconciled(changed, before, after, changes, header, render=str, warnings=(), **extra):
    """The result dict of one reconciliation. ``render`` turns one object of
    ``before``/``after`` into its ``--diff`` line; ``header`` says what the
    lines are (e.g. "owned routes (protocol 201) in table main")."""
    return _result(changed, before, after, changes, header, [render(item) for item in before],
                   [render(item) for item in after], warnings, extra)


def summarised(changed, before, after, changes, header, lines, warnings=(), **extra):
    """The result dict of a module whose objects are too many to list:
    ``before``/``after`` are summaries (dicts), and ``lines`` turns one
    summary into its ``--diff`` lines."""
    return _result(changed, before, after, changes, header, lines(before), lines(after), warnings, extra)


def gathered(objects, **extra):
    """The result of ``state: gathered``: the kernel's objects, nothing changed."""
    result = dict(extra)
    result.update(changed=False, gathered=objects)
    return result


def exit_reconciled(module, result):
    """Warnings as task warnings; the diff only when Ansible asked for it,
    with the ``changes`` lines as its ``prepared`` text; then exit."""
    for warning in result.pop("warnings", ()):
        module.warn(warning)
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        if result.get("changes"):
            diff["prepared"] = _text(result["changes"])
        result["diff"] = diff
    module.exit_json(**result)
