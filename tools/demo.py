"""`make demo`: the emergency worm block on a five-host emulated estate.

Starts five winsim hosts (current Windows Server, 2008 R2, 2003 and XP personalities) on loopback
addresses. Two of them already enforce a corporate baseline (role ipsec_baseline: a policy that blocks Telnet).
Then, over real WinRM, with Ansible's jsonfile fact cache on (build/demo/ansible.cfg):

  1. playbooks/emergency_block.yml: the KB 813878 Slammer block (UDP 1434 in and out) in canary
     waves. The baseline host keeps its policy assigned and the block's rule goes into it; the
     others get the block's own policy. A host not in the fact cache yet is read, then written (two
     WinRM commands); the baseline host's state is cached since the baseline run (one).
  2. playbooks/unblock.yml: each host as it was. Warm: the state the block read back is in the fact
     cache, so each host needs one WinRM command (its script checks the host is as last seen).
  3. playbooks/emergency_block.yml again, warm.
  4. Someone adds a rule by hand on win004, outside the corporate baseline.
  5. playbooks/drift_check.yml on the two baseline hosts (check mode): the block's rule in the
     baseline is "emergency block in place", not drift; win004's hand-made rule is drift.

After each run it shows, per host, the WinRM commands the run cost and what the host enforces, and
where the rollout record (JSON and HTML) is. Every command it prints works when pasted from the
repository root while the estate runs; the last lines say how to start the same estate again.
State, inventory, fact cache and records stay in build/demo/.
"""
import os
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from winsim.estate import Estate  # noqa: E402  (`make demo` puts the collection on PYTHONPATH)
from winsim.state.firewall import Packet, packet_verdict  # noqa: E402

DEMO_DIR = os.path.join(ROOT, "build", "demo")
PERSONALITIES = ("modern", "2008r2", "modern", "2003", "xp")
BASE_ADDRESS = "127.0.10.2"     # away from the test suite's addresses
BASELINE_HOSTS = (2, 3)         # the second current server (win003) and the 2003 server (win004)
DRIFTER = 3                     # win004: someone adds a rule by hand, outside the baseline
# The corporate baseline (role winsec.ipsec.ipsec_baseline) in the inventory's group_vars, so that
# enforcing it and the drift check read the same one.
BASELINE_VARS = """\
# Written by tools/demo.py: the corporate baseline (it blocks Telnet), for role winsec.ipsec.ipsec_baseline.
ipsec_baseline_name: Corp Baseline
ipsec_baseline_rules:
  - name: Block Telnet
    filters: ['*=0:23:TCP']
"""
BASELINE_PLAYBOOK = """\
# Written by tools/demo.py: the corporate baseline, enforced before the incident.
- name: Corporate baseline
  hosts: {hosts}
  gather_facts: false
  roles:
    - role: winsec.ipsec.ipsec_baseline
      vars:
        ipsec_baseline_mode: enforce
"""
DRIFT_PLAYBOOK = """\
# Written by tools/demo.py: a change made by hand, outside the baseline.
- name: Someone permits RDP from anywhere on {host}
  hosts: {host}
  gather_facts: false
  tasks:
    - name: Permit RDP (added by hand)
      winsec.ipsec.ipsec_rule:
        policy: Corp Baseline
        name: Permit RDP (added by hand)
        action: permit
        filters: ['*=0:3389:TCP']
"""
ANSIBLE_CFG = """\
# Written by tools/demo.py: the demo's Ansible settings (ANSIBLE_CONFIG=build/demo/ansible.cfg).
[defaults]
collections_path = {collections}
host_key_checking = False
retry_files_enabled = False
nocows = True
# Fact caching: each winsec.ipsec task leaves the state it read back in the winsec_ipsec_state fact;
# kept here, the next run plans against it and changes a host with one WinRM command.
fact_caching = jsonfile
fact_caching_connection = {facts}
fact_caching_timeout = 86400
"""


def rel(path):
    return os.path.relpath(path, ROOT)


def run(argv, note=""):
    """Print the command as it can be pasted (from the repository root), then run it."""
    printed = ["ANSIBLE_CONFIG=" + rel(os.path.join(DEMO_DIR, "ansible.cfg"))]
    printed += [rel(a) if os.path.isabs(a) and a.startswith(ROOT) else a for a in argv]
    print("\n" + (note + "\n" if note else "") + "$ " + " ".join(shlex.quote(p) if i else p
                                                               for i, p in enumerate(printed)), flush=True)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(DEMO_DIR, "ansible.cfg"),
               ANSIBLE_FORCE_COLOR=os.environ.get("ANSIBLE_FORCE_COLOR", "0"))
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    return subprocess.run(argv, env=env, cwd=ROOT).returncode


def tool(name):
    return rel(os.path.join(os.path.dirname(sys.executable), name))


def blocks(sim, port, protocol):
    return packet_verdict(sim, Packet("10.0.0.5", sim.address, protocol, 50000, port)) is not None


def show(estate, seen):
    """Per host: the WinRM commands since `seen`, the assigned policy and what is blocked now."""
    print("\n  host    personality  WinRM commands  assigned policy             UDP 1434  TCP 23")
    for served in estate.hosts:
        sim = served.host
        commands = served.service.commands_seen - seen.get(served.name, 0)
        seen[served.name] = served.service.commands_seen
        print("  %-7s %-12s %14d  %-26s  %-8s  %s" % (
            served.name, served.personality, commands, sim.state().assigned or "(none)",
            "blocked" if blocks(sim, 1434, 17) else "open", "blocked" if blocks(sim, 23, 6) else "open"))


def main():
    started = time.monotonic()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    state = os.path.join(DEMO_DIR, "state")
    inventory = os.path.join(DEMO_DIR, "hosts.yml")
    record = os.path.join(DEMO_DIR, "record")
    estate = Estate(state, len(PERSONALITIES), PERSONALITIES, base_address=BASE_ADDRESS)
    rc = 0
    with estate:
        estate.write_inventory(inventory)
        with open(os.path.join(DEMO_DIR, "ansible.cfg"), "w") as handle:
            handle.write(ANSIBLE_CFG.format(collections=os.path.join(ROOT, "build", "collections"),
                                            facts=os.path.join(DEMO_DIR, "facts")))
        print("winsim estate of %d hosts (fact cache: %s):" % (len(estate.hosts), rel(os.path.join(DEMO_DIR, "facts"))))
        for served in estate.hosts:
            print("  %s  %-7s %s:%s" % (served.name, served.personality, served.address, served.http_port))
        seen = {s.name: s.service.commands_seen for s in estate.hosts}
        baseline = ",".join(estate.hosts[i].name for i in BASELINE_HOSTS)
        drifter = estate.hosts[DRIFTER].name
        book = tool("ansible-playbook")
        os.makedirs(os.path.join(DEMO_DIR, "group_vars"))
        with open(os.path.join(DEMO_DIR, "group_vars", "all.yml"), "w") as handle:
            handle.write(BASELINE_VARS)
        baseline_book = os.path.join(DEMO_DIR, "baseline.yml")
        with open(baseline_book, "w") as handle:
            handle.write(BASELINE_PLAYBOOK.format(hosts=baseline))
        drift_book = os.path.join(DEMO_DIR, "drift.yml")
        with open(drift_book, "w") as handle:
            handle.write(DRIFT_PLAYBOOK.format(host=drifter))
        report = os.path.join(DEMO_DIR, "report")
        steps = [
            ([book, "-i", inventory, baseline_book],
             "# Before the incident, %s enforce a corporate baseline that blocks Telnet:" % baseline),
            ([book, "-i", inventory, os.path.join(ROOT, "playbooks", "emergency_block.yml"),
              "-e", "rollout_record_dir=" + rel(record)],
             "# The Slammer block in canary waves. A host this controller has not read yet is read, then\n"
             "# written (2 WinRM commands); %s's state is in the fact cache since the baseline run (1)." % baseline),
            ([book, "-i", inventory, os.path.join(ROOT, "playbooks", "unblock.yml"),
              "-e", "rollout_record_dir=" + rel(record)],
             "# The undo. Warm: the block's read-back is in the fact cache, one WinRM command per host."),
            ([book, "-i", inventory, os.path.join(ROOT, "playbooks", "emergency_block.yml"),
              "-e", "rollout_record_dir=" + rel(record)],
             "# The block again, warm."),
            ([book, "-i", inventory, drift_book],
             "# Someone adds a rule by hand on %s, outside the baseline:" % drifter),
            ([book, "-i", inventory, os.path.join(ROOT, "playbooks", "drift_check.yml"),
              "-e", "ipsec_targets=" + baseline, "-e", "drift_report_dir=" + rel(report)],
             "# The drift check of the baseline hosts (check mode: nothing changes). The block's rule in the\n"
             "# baseline is 'emergency block in place', not drift; %s's hand-made rule is drift." % drifter),
        ]
        for argv, note in steps:
            rc = run(argv, note)
            show(estate, seen)
            if rc != 0:
                break
        print("\nRollout records: %s (emergency-block.html for people, .json for a ticket; emergency-unblock.*)"
              % rel(record))
        print("Drift report: %s (drift.json, drift.xml for CI)" % rel(os.path.join(report, "drift.html")))
    print("\nHosts stopped; state, inventory, fact cache and records kept in %s. %.1f s in all." % (
        rel(DEMO_DIR), time.monotonic() - started))
    print("To paste the commands above, serve the same estate again (Ctrl-C stops it):\n$ %s -m winsim serve "
          "--state %s --hosts %d --personalities %s --base-address %s --inventory %s" % (
              rel(sys.executable), rel(state), len(PERSONALITIES), ",".join(PERSONALITIES), BASE_ADDRESS,
              rel(inventory)))
    return rc


if __name__ == "__main__":
    sys.exit(main())
