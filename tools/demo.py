"""`make demo`: the emergency worm block on a five-host emulated estate.

Starts five winsim hosts (current Windows Server, 2008 R2, 2003 and XP personalities) on loopback
addresses, runs playbooks/emergency_block.yml against them over real WinRM (the KB 813878 Slammer
block: UDP 1434 in and out, dynamic filters plus an assigned static policy, in canary waves), shows
each host's verified result, then stops the hosts. State and the inventory stay in build/demo/.
"""
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from winsim.estate import Estate  # noqa: E402  (winsim sets up the collection import path)

DEMO_DIR = os.path.join(ROOT, "build", "demo")
PERSONALITIES = ("modern", "2008r2", "modern", "2003", "xp")
BASE_ADDRESS = "127.0.10.2"     # away from the test suite's addresses


def ansible_env():
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, "build", "collections"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_FORCE_COLOR": env.get("ANSIBLE_FORCE_COLOR", "0"),
        "ANSIBLE_NOCOWS": "1",
    })
    return env


def run_playbook(inventory, playbook, *extra):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
           os.path.join(ROOT, "playbooks", playbook), *extra]
    print("\n$ " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd), flush=True)
    return subprocess.run(cmd, env=ansible_env(), cwd=ROOT).returncode


def main():
    started = time.monotonic()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    state = os.path.join(DEMO_DIR, "state")
    inventory = os.path.join(DEMO_DIR, "hosts.yml")
    estate = Estate(state, len(PERSONALITIES), PERSONALITIES, base_address=BASE_ADDRESS)
    with estate:
        estate.write_inventory(inventory)
        print("winsim estate of %d hosts:" % len(estate.hosts))
        for served in estate.hosts:
            print("  %s  %-7s %s:%s" % (served.name, served.personality, served.address, served.http_port))
        rc = run_playbook(inventory, "emergency_block.yml")
        if rc == 0 and os.path.exists(os.path.join(ROOT, "playbooks", "drift_check.yml")):
            rc = run_playbook(inventory, "drift_check.yml", "-e", "drift_report_dir=" + os.path.join(DEMO_DIR, "report"))
            print("\nDrift report: %s" % os.path.join(DEMO_DIR, "report"))
    print("\nInventory and host state kept in %s; hosts stopped. %.1f s in all." % (
        os.path.relpath(DEMO_DIR, ROOT), time.monotonic() - started))
    return rc


if __name__ == "__main__":
    sys.exit(main())
