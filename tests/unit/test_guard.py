"""guard.py: the compare-and-swap fingerprint, computed by the controller from the read and by the
write script on the host (winsim's PowerShell, as Ansible encodes the script), must agree, and must
differ once the store changed."""
import pytest
from ansible.plugins.shell.powershell import ShellModule

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import guard, remote
from winsim import shell
from winsim.host import SimHost


def run(sim, script):
    return remote.parse_transcript(shell.execute(sim, ShellModule()._encode_script(script)).stdout)


def store_text(sim):
    return remote.store_text(run(sim, remote.read_script()).sections["store"])


def precheck(sim, expected_from):
    """The write script's precheck alone; returns (failed, what it found or None)."""
    lines = ["$failed = 0"] + guard.precheck_lines(expected_from) + ["exit 0"]
    transcript = run(sim, "\n".join(lines))
    return guard.stale(transcript) is not None, guard.stale(transcript)


@pytest.mark.parametrize("personality", ["modern", "xp"])
@pytest.mark.parametrize("limit", [guard.MAX_FINGERPRINT, 20])     # 20: every store takes the long form
def test_host_and_controller_agree_until_the_store_changes(tmp_path, monkeypatch, personality, limit):
    monkeypatch.setattr(guard, "MAX_FINGERPRINT", limit)
    sim = SimHost("w1", "127.0.0.9", personality, str(tmp_path))
    empty = store_text(sim)
    assert guard.fingerprint(empty) == ""
    assert precheck(sim, empty) == (False, None)
    add = (["netsh", "ipsec", "static", "add", "policy", "name=P1"] if personality == "modern" else
           ["ipseccmd", "-w", "REG", "-p", "P1", "-r", "R1", "-f", "*=0:80:TCP", "-n", "BLOCK"])
    assert sim.run_tool(add).rc == 0
    one = store_text(sim)
    assert guard.fingerprint(one) and guard.fingerprint(one) != guard.fingerprint(empty)
    if limit == 20:
        assert "/" in guard.fingerprint(one) and "," not in guard.fingerprint(one)
    assert precheck(sim, one) == (False, None)                     # unchanged: the batch may run
    failed, found = precheck(sim, empty)                           # planned on the empty store
    assert failed and found.count("0x") >= 4, found                 # the form follows the planned store's
    sim.advance_time(2)                                            # whenChanged: one-second resolution
    # an edit that keeps every object (netsh: a description; ipseccmd: the rule written again)
    edit = (["netsh", "ipsec", "static", "set", "policy", "name=P1", "description=x"] if personality == "modern"
            else add)
    assert sim.run_tool(edit).rc == 0
    assert precheck(sim, one)[0] == (limit > 20)                   # the long form misses a same-size edit


def test_no_read_no_check():
    assert guard.precheck_lines(None) == []


def test_quotes_in_the_fingerprint_stay_inside_the_literal():
    lines = guard.precheck_lines("    ActivePolicy    REG_SZ    it's\n")
    assert "if ($cas -ne 'it''s') {" in lines
