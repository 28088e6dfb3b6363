#!/usr/bin/env bash
# The Star Wars demo: lab up, deploy, real probes as a matrix, then a second
# run that must report changed=0. The lab stays up for exploration; remove it
# with: ansible-playbook -i inventories/demo playbooks/lab.yml -e lab_state=absent
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export ANSIBLE_NOCOLOR=1

inv=inventories/demo
log=$(mktemp -d /tmp/palisade-demo.XXXXXX)

step() { printf '\n==> %s\n' "$*"; }

step "Lab: three hosts (node1, node2 over the netns connection; node3 over SSH), four endpoints"
ansible-playbook -i "$inv" playbooks/lab.yml -e lab_state=present | tee "$log/lab.txt" | sed -n '/PLAY RECAP/,$p'

step "Deploy: site.yml (first run)"
ansible-playbook -i "$inv" playbooks/site.yml | tee "$log/site1.txt" | sed -n '/PLAY RECAP/,$p'

step "Reachability with real packets (allow = connected / echoed / 2xx)"
ansible-playbook -i "$inv" playbooks/verify.yml | tee "$log/verify.txt" \
  | sed -n '/Reachability/,/PLAY RECAP/p' | grep -E '^ {8}"' | sed -e 's/^ *"//' -e 's/",\{0,1\}$//'

step "Star Wars: verdicts the policies give (computed on the controller, policy_trace)"
ansible-playbook -i "$inv" playbooks/trace.yml -e @examples/starwars/probes.yml | tee "$log/trace.txt" \
  | sed -n '/Verdicts/,/PLAY RECAP/p' | grep -E '^ {8}"' | sed -e 's/^ *"//' -e 's/",\{0,1\}$//'

step "Star Wars: what real packets do (probe)"
ansible-playbook -i "$inv" playbooks/verify.yml -e @examples/starwars/probes.yml | tee "$log/starwars.txt" \
  | sed -n '/Observed/,/PLAY RECAP/p' | grep -E '^ {8}"' | sed -e 's/^ *"//' -e 's/",\{0,1\}$//'
echo "(L3/L4 verdicts: the eBPF datapath; HTTP verdicts: the L7 proxy (HAProxy) on the destination's host, 403 Access denied)"

step "Drops counted by the datapath (reason, direction, packets), L7 redirect and proxy counters"
ansible-playbook -i "$inv" playbooks/drops.yml | tee "$log/drops.txt" \
  | grep -E '^ok: \[.*\] => \{|^ {8}"|"msg": "L7:' \
  | sed -e 's/^ *"msg": "/  /' -e 's/^ *"//' -e 's/",\{0,1\}$//' -e 's/^ok: \[\(.*\)\] => {/\1:/'

step "Deploy again: every host must report changed=0"
ansible-playbook -i "$inv" playbooks/site.yml | tee "$log/site2.txt" | sed -n '/PLAY RECAP/,$p'
if grep -E '^\S+ +: .*changed=[1-9]' "$log/site2.txt"; then
  echo "FAIL: the second run changed something (full log: $log/site2.txt)" >&2
  exit 1
fi
echo "second run: changed=0 on every host"
echo "logs: $log; tear down with: ansible-playbook -i $inv playbooks/lab.yml -e lab_state=absent"
