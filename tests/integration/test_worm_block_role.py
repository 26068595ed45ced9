"""Role worm_block through playbooks/emergency_block.yml and unblock.yml, over WinRM against winsim:
the block lands and is verified per host, a second run changes nothing, bad ports fail before any
host is contacted, and the undo removes what the block added."""
import os
import subprocess

import pytest

from test_modules_kb import RoundTrips

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALLBACKS = os.path.join(REPO, "tests", "integration", "playbooks", "callback_plugins")
SLAMMER = "Block UDP 1434 Filter"


def play(estate, env, playbook, *extra):
    env = dict(env, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS)
    argv = ["ansible-playbook", "-i", estate.inventory_path, os.path.join(REPO, "playbooks", playbook), *extra]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


def recap(out):
    """{host: {'ok': n, 'changed': n, 'failed': n, ...}} from the PLAY RECAP."""
    hosts = {}
    for line in out.split("PLAY RECAP")[-1].splitlines():
        if " : " in line:
            name, counts = line.split(" : ", 1)
            hosts[name.strip()] = {k: int(v) for k, v in (p.split("=") for p in counts.split())}
    return hosts


def rerun_changes_nothing_then_unblock(estate, env):
    """emergency_block.yml again (nothing may change), then unblock.yml (must succeed)."""
    again = play(estate, env, "emergency_block.yml")
    assert again.returncode == 0, again.stdout[-4000:]
    assert all(c["changed"] == 0 for h, c in recap(again.stdout).items() if h != "localhost")
    undo = play(estate, env, "unblock.yml")
    assert undo.returncode == 0, undo.stdout[-4000:]


@pytest.mark.winsim(count=2, personalities=("modern", "xp"))
def test_block_verify_idempotent_and_undo(estate, ansible_env):
    trips = RoundTrips(estate)
    first = play(estate, ansible_env, "emergency_block.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    assert "2 hosts: 2 blocked and verified, 0 failed, 0 not reached" in first.stdout
    for served in estate.hosts:
        assert "%s: blocked and verified; assigned policy: %s; dynamic filters: 2" % (served.name, SLAMMER) \
            in first.stdout
        state = served.host.state()
        assert state.assigned == SLAMMER
        assert sorted(r.name for r in state.policy(SLAMMER).rules if r.name) == [
            "Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule"]
        assert {(d.filter.dst_port, d.filter.protocol) for d in state.dynamic} == {(1434, 17)}
        assert len(state.dynamic) == 2
        # dynamic block + static policy, each a read and a write: 4 WinRM commands per host
        assert len(trips.calls[served.name]) == 4

    rerun_changes_nothing_then_unblock(estate, ansible_env)
    for served in estate.hosts:
        state = served.host.state()
        assert state.policy(SLAMMER) is None and state.assigned == "" and state.dynamic == ()


@pytest.mark.winsim(count=1, personalities=("modern",))
def test_bad_ports_fail_naming_the_entry_and_reach_no_host(estate, ansible_env):
    trips = RoundTrips(estate)
    out = play(estate, ansible_env, "emergency_block.yml",
               "-e", '{"worm_block_ports": [{"protocol": "UDP", "port": "1434; x"}]}')
    assert out.returncode != 0
    assert "worm_block_ports[0].port: '1434; x' is not valid; expected an integer 1-65535" in out.stdout
    assert trips.total() == 0 and estate.hosts[0].host.audit_entries() == []
