#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palisade.ebpf developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ip_rule
short_description: Declarative IPv4 policy-routing rules, reconciled through netlink
version_added: 0.1.0
description:
  - Makes the IPv4 policy-routing rules listed in O(rules) exist (or not
    exist) in the kernel of the managed host, in its current network
    namespace, through rtnetlink (pyroute2); it never runs C(ip).
  - A rule is identified by its priority. A listed rule whose priority holds
    an owned rule with other attributes is changed make-before-break, since
    the kernel has no in-place replace for rules. The new rule is added
    first, then the old one is deleted, so matching traffic is never left
    without a rule.
  - Rules this collection creates carry the rule protocol O(protocol)
    (C(FRA_PROTOCOL)). Only rules with that protocol are ever removed. A rule
    of another protocol at a wanted priority (for example the kernel's
    C(0 from all lookup local)) fails the task, naming that rule.
  - Everything is validated before the first write.
author:
  - palisade.ebpf developers (@palisade-ebpf)
requirements:
  - pyroute2 (Debian package C(python3-pyroute2)) on the managed host
extends_documentation_fragment:
  - palisade.ebpf.attributes
options:
  rules:
    description:
      - The rules to manage. An empty list is allowed (with O(purge=true) it
        removes every owned rule).
      - Required with O(state=present) and O(state=absent); not used with
        O(state=gathered).
    type: list
    elements: dict
    suboptions:
      priority:
        description:
          - Rule priority (preference); identifies the rule.
        type: int
        required: true
      action:
        description:
          - What a matching packet gets. V(to_tbl) looks up O(rules[].table).
        type: str
        choices: [to_tbl, blackhole, unreachable, prohibit]
        default: to_tbl
      table:
        description:
          - Table to look up, as a number or a name (V(main), V(local),
            V(default), or a name from iproute2's C(rt_tables)).
          - Required with O(rules[].action=to_tbl) and O(state=present); not
            allowed with other actions.
        type: raw
      fwmark:
        description:
          - Match packets whose mark, under O(rules[].fwmask), equals this
            value. A number, a hex string like V(0x200), or V(0x200/0xf00)
            with the mask included.
        type: raw
      fwmask:
        description:
          - Mask applied to the packet mark before comparing it with
            O(rules[].fwmark). Default is all ones (exact match).
        type: raw
      src:
        description:
          - Match the source prefix (CIDR; a bare address means C(/32)).
        type: str
      dst:
        description:
          - Match the destination prefix (CIDR; a bare address means C(/32)).
        type: str
      iif:
        description:
          - Match the incoming interface (V(lo) means locally generated
            traffic). The interface need not exist yet; the rule becomes
            active when it appears, as with C(ip rule).
        type: str
      oif:
        description:
          - Match the outgoing interface (for sockets bound to it).
        type: str
  state:
    description:
      - V(present) makes every listed rule exist exactly as described.
      - V(absent) removes the owned rules at the listed priorities (only
        O(rules[].priority) matters). A rule of another protocol there is left
        alone, with a warning.
      - V(gathered) writes nothing and returns all owned IPv4 rules in
        RV(gathered), in the form O(rules) takes. O(rules) must be empty and
        O(purge) false.
    type: str
    choices: [present, absent, gathered]
    default: present
  purge:
    description:
      - Also remove every owned IPv4 rule that is not listed. Rules of other
        protocols are never touched.
      - With O(state=absent) this removes every owned IPv4 rule.
    type: bool
    default: false
  protocol:
    description:
      - The rule protocol (C(FRA_PROTOCOL)) that marks rules as owned by this
        collection. Must be 5-255, since 0-4 belong to the kernel and the
        administrator.
    type: int
    default: 201
notes:
  - Check mode computes everything, including conflicts, and writes nothing.
    With C(--diff), all owned IPv4 rules are shown before and after, and the
    writes as RV(changes).
  - Only IPv4 rules are managed.
seealso:
  - module: palisade.ebpf.ip_route
"""

EXAMPLES = r"""
- name: Deliver L7-redirected flows (mark 0x200 under 0xf00) through table 2004
  palisade.ebpf.ip_rule:
    rules:
      - priority: 9
        fwmark: "0x200"
        fwmask: "0xf00"
        table: 2004

- name: Source-based lookup, and nothing else owned
  palisade.ebpf.ip_rule:
    rules:
      - priority: 100
        src: 10.1.1.0/24
        iif: eth0
        table: main
    purge: true

- name: Remove the rule at priority 9 (only if it is ours)
  palisade.ebpf.ip_rule:
    rules:
      - priority: 9
    state: absent

- name: Read the owned rules
  palisade.ebpf.ip_rule:
    state: gathered
  register: owned_rules
"""

RETURN = r"""
before:
  description:
    - All owned IPv4 rules before the task, in the input schema of O(rules),
      sorted by priority. Marks and masks are hexadecimal text.
    - An owned rule made outside the module may carry C(invert), C(tos) or
      C(extras) (attributes the module does not set, such as C(dport)).
  returned: when O(state) is V(present) or V(absent)
  type: list
  elements: dict
  sample:
    - {priority: 9, action: to_tbl, table: 2004, fwmark: "0x200", fwmask: "0xf00"}
after:
  description:
    - All owned IPv4 rules after the task, in the same form as RV(before).
      Predicted in check mode, read back from the kernel otherwise.
  returned: when O(state) is V(present) or V(absent)
  type: list
  elements: dict
  sample:
    - {priority: 9, action: to_tbl, table: 2005, fwmark: "0x200", fwmask: "0xf00"}
changes:
  description:
    - The netlink writes, one per line, in the order they were (or in check
      mode would be) made. C(+) adds a rule, C(-) removes one. A changed rule
      is an add followed, after every other add, by the removal of the old
      rule, since the kernel cannot change a rule in place.
    - With C(--diff), the diff shows RV(before) and RV(after) one rule per
      line, and these lines as its C(prepared) text.
  returned: when O(state) is V(present) or V(absent)
  type: list
  elements: str
  sample:
    - "+ 9: from all fwmark 0x200/0xf00 lookup 2005"
    - "- 9: from all fwmark 0x200/0xf00 lookup 2004"
    - "- 100: from 10.1.1.0/24 lookup main"
gathered:
  description:
    - With O(state=gathered), all owned IPv4 rules, in the form of
      RV(before). Nothing is written.
  returned: when O(state) is V(gathered)
  type: list
  elements: dict
  sample:
    - {priority: 9, action: to_tbl, table: 2004, fwmark: "0x200", fwmask: "0xf00"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.palisade.ebpf.plugins.module_utils._defaults import ROUTE_PROTOCOL
from ansible_collections.palisade.ebpf.plugins.module_utils._routing.reconcile import reconcile_rules, run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rules=dict(
                type="list",
                elements="dict",
                options=dict(
                    priority=dict(type="int", required=True),
                    action=dict(type="str", default="to_tbl", choices=["to_tbl", "blackhole", "unreachable", "prohibit"]),
                    table=dict(type="raw"),
                    fwmark=dict(type="raw"),
                    fwmask=dict(type="raw"),
                    src=dict(type="str"),
                    dst=dict(type="str"),
                    iif=dict(type="str"),
                    oif=dict(type="str"),
                ),
            ),
            state=dict(type="str", default="present", choices=["present", "absent", "gathered"]),
            purge=dict(type="bool", default=False),
            protocol=dict(type="int", default=ROUTE_PROTOCOL),
        ),
        required_if=[("state", "present", ["rules"]), ("state", "absent", ["rules"])],
        supports_check_mode=True,
    )
    run_module(module, reconcile_rules, module.params["rules"])


if __name__ == "__main__":
    main()
