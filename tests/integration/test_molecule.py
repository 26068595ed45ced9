"""Molecule: `molecule test` of the default scenario against winsim hosts, the clean-up after a
failed converge, and the syntax of the scenario for real Windows hosts.

The scenarios live in extensions/molecule/, the layout Molecule 26 expects of a collection: no run
may print its migration notice (or any other warning not listed below).

Each run gets its own ANSIBLE_HOME, so Molecule's ephemeral directory (ANSIBLE_HOME/tmp/...),
where create.yml keeps the winsim estate, belongs to this test alone. winsim picks free ports on
127.0.20.x, so a parallel `make demo`, another worker's estates or a second run never collide.
"""
import os
import re
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Warnings a passing run may print, each for a reason. Anything else (a deprecation, an inventory
# or configuration warning, a Molecule complaint) fails the test.
ALLOWED_WARNINGS = (
    # The modules' advisories, by design: dynamic filters do not survive a reboot (ipsec_dynamic_block);
    # assigning the baseline displaces prepare's legacy policy, and the undo leaves no policy assigned
    # (ipsec_policy).
    "dynamic filters are volatile",
    "unassigns policy 'Legacy SMB Block'",
    "it is unassigned before it is deleted",
)


def molecule(ansible_env, *args, timeout=600):
    env = dict(ansible_env, NO_COLOR="1", PY_COLORS="0", ANSIBLE_FORCE_COLOR="0")
    env.pop("MOLECULE_EPHEMERAL_DIRECTORY", None)
    out = subprocess.run(["molecule", *args], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=timeout)
    return out.returncode, ANSI.sub("", out.stdout + out.stderr)


def winsim_processes(ansible_env):
    """pids of `winsim serve` processes whose state lives under this test's ANSIBLE_HOME."""
    marker = ansible_env["ANSIBLE_HOME"].encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if b"winsim" in argv and b"serve" in argv and any(marker in arg for arg in argv):
            found.append(int(pid))
    return found


@pytest.fixture
def no_estate_left(ansible_env):
    """Fails the test if a winsim estate of this test outlives `molecule destroy` (and stops it)."""
    yield
    left = winsim_processes(ansible_env)
    for pid in left:
        os.kill(pid, 9)
    assert not left, "winsim still served after molecule destroy: pids %s" % left


MIGRATION_NOTICE = "should migrate to 'extensions/molecule'"


def unexpected_warnings(output):
    return [line for line in output.splitlines()
            if "WARNING" in line and not any(allowed in line for allowed in ALLOWED_WARNINGS)]


def step_results(output):
    """{step: 'Successful' | 'Failed' | ...} from Molecule's closing DETAILS (last result wins)."""
    return dict(re.findall(r"^default (?:➜|>) (\w+): Executed: (\w+)", output, re.M))


def test_molecule_test_default_scenario(ansible_env, no_estate_left):
    rc, output = molecule(ansible_env, "test")
    assert rc == 0, output[-6000:]
    steps = step_results(output)
    for step in ("create", "prepare", "converge", "idempotence", "verify", "cleanup", "destroy"):
        assert steps.get(step) == "Successful", (step, steps)
    # verify really read three hosts of three personalities and asserted on each.
    assert re.search(r"win001\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", output)
    assert len(re.findall(r"TASK \[Dynamic filters block the port", output)) == 1
    for host in ("win001", "win002", "win003"):
        assert re.search(r"ok: \[%s\] => \{\s*\"changed\": false,\s*\"msg\": \"All assertions passed\"" % host,
                         output), host
    assert not unexpected_warnings(output), unexpected_warnings(output)
    assert MIGRATION_NOTICE not in output


def test_failed_converge_still_destroys_the_estate(ansible_env, tmp_path, no_estate_left):
    failing = tmp_path / "failing-converge.yml"
    failing.write_text("---\n- name: Converge that fails\n  hosts: all\n  gather_facts: false\n"
                       "  tasks:\n    - name: Fail on purpose\n      ansible.builtin.fail:\n"
                       "        msg: converge failed on purpose\n")
    base = tmp_path / "base.yml"
    base.write_text("---\nansible:\n  playbooks:\n    converge: %s\n" % failing)
    rc, output = molecule(ansible_env, "--base-config", str(base), "test")
    assert rc != 0
    assert "converge failed on purpose" in output
    steps = step_results(output)
    assert steps.get("create") == "Successful" and steps.get("destroy") == "Successful", steps


def test_windows_scenario_syntax(ansible_env):
    rc, output = molecule(ansible_env, "syntax", "-s", "windows")
    assert rc == 0, output[-4000:]
    assert re.search(r"^windows (?:➜|>) syntax: Executed: Successful", output, re.M)
    assert not unexpected_warnings(output), unexpected_warnings(output)
    assert MIGRATION_NOTICE not in output
