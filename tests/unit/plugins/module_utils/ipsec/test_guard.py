"""guard.py: the precheck's scope, its script, the state fact; and on winsim's PowerShell (as Ansible
encodes the script), fingerprints computed by the host that catch every change, a value edited by
hand with reg.exe included (the whenChanged stamps of the old compare-and-swap missed that)."""
import pytest
from ansible.plugins.shell.powershell import ShellModule

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import guard, remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import Change, DynamicRule, Policy
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
from winsim.shell import machine as shell
from winsim.host import SimHost

POLICY = Change("add_policy", Policy("P"))
ASSIGN = Change("assign", Policy("P"))
DYNAMIC = Change("add_dynamic", DynamicRule(parse_filterspec("*=0:1434:UDP").filter))


@pytest.mark.parametrize("changes,kw,names", [
    ([POLICY], {}, ["os", "store", "policyagent"]),
    ([ASSIGN], {}, ["os", "store", "policyagent"]),
    ([DYNAMIC], {}, ["os", "policyagent", "dynamic-netsh", "mmpolicies-netsh", "dynamic-ipseccmd"]),
    ([DYNAMIC], {"from_fact": True}, ["os", "store", "policyagent", "dynamic-netsh", "mmpolicies-netsh",
                                      "dynamic-ipseccmd"]),
    ([POLICY, DYNAMIC], {}, ["os", "store", "policyagent", "dynamic-netsh", "mmpolicies-netsh", "dynamic-ipseccmd"]),
    ([], {"exempt": True}, ["os", "policyagent", "exempt"]),
    ([POLICY], {"store": "domain"}, ["os", "policyagent", "directory", "directory-gpos"]),
])
def test_the_precheck_covers_what_the_plan_depends_on(changes, kw, names):
    assert guard.scope(changes, **kw) == names


def test_the_precheck_compares_every_section_in_scope_and_says_what_it_found():
    lines = guard.precheck_lines({"os": "AA", "store": "it's"}, ["os", "store", "policyagent"])
    assert "if ($winsecfp_os -ne 'AA') { $failed = -1 }" in lines
    assert "if ($winsecfp_store -ne 'it''s') { $failed = -1 }" in lines
    assert "if ($winsecfp_policyagent -ne '') { $failed = -1 }" in lines        # not expected: differs if read
    text = "\n".join(lines)
    assert "begin store" not in text and "Write-Output $text" not in text       # reads silently
    assert "dynamic show" not in text and "NoDefaultExempt" not in text        # only the scope is read
    assert 'Write-Output "store=$winsecfp_store"' in lines
    t = remote.parse_transcript("#winsec# begin stale\nos=AA\nstore=BB\npolicyagent=\n#winsec# end stale rc=1\n")
    assert guard.stale(t) == {"os": "AA", "store": "BB"}
    assert guard.differing({"os": "AA", "store": "CC", "exempt": "x"}, guard.stale(t)) == ["store"]
    assert guard.stale(remote.parse_transcript("")) is None


def fact(**changes):
    base = {"version": 1, "host": "win01", "read_at": "2026-01-01T00:00:00Z", "dialect": "netsh", "os": {},
            "fingerprint": {"os": "A", "store": "B"},
            "sections": {"os": {"text": "o", "rc": 0}, "store": {"text": "s", "rc": 0}}}
    base.update(changes)
    return base


def test_a_fact_serves_only_its_own_host_version_and_dialect():
    t = guard.usable_fact(fact(), "win01")
    assert t.sections["store"].text == "s" and t.fingerprint == {"os": "A", "store": "B"}
    assert guard.usable_fact(fact(), "win01", "netsh") is not None
    for spoiled, host, dialect in [(fact(), "win02", ""), (fact(), "", ""), (fact(version=2), "win01", ""),
                                   (fact(), "win01", "ipseccmd"), (fact(sections=None), "win01", ""),
                                   (fact(fingerprint={"os": "A"}), "win01", ""), ("text", "win01", ""),
                                   (fact(sections={"os": {"text": "o", "rc": "0"}}), "win01", ""),
                                   (fact(sections={"os": {"text": "o", "rc": 0}}), "win01", "")]:
        assert guard.usable_fact(spoiled, host, dialect) is None, (spoiled, host, dialect)


# -- on winsim: the host computes, the controller only compares ----------------------------------

def run(sim, script):
    return remote.parse_transcript(shell.execute(sim, ShellModule()._encode_script(str(script))).stdout)


def precheck(sim, expected, names=("os", "store", "policyagent")):
    """The write script's precheck alone: what it found when it failed, else None."""
    lines = ["$failed = 0"] + guard.precheck_lines(expected, list(names)) + ["exit 0"]
    return guard.stale(run(sim, "\n".join(lines)))


@pytest.mark.parametrize("personality", ["modern", "xp"])
def test_host_computed_fingerprints_catch_every_change_to_the_store(tmp_path, personality):
    sim = SimHost("w1", "127.0.0.9", personality, str(tmp_path))
    empty = run(sim, remote.read_script())
    assert set(empty.fingerprint) >= {"os", "store", "policyagent", "exempt"}
    assert all(len(v) == 59 and v.count("-") == 19 for v in empty.fingerprint.values())   # SHA-1, BitConverter
    assert precheck(sim, empty.fingerprint) is None                     # unchanged: the batch may run
    add = (["netsh", "ipsec", "static", "add", "policy", "name=P1"] if personality == "modern" else
           ["ipseccmd", "-w", "REG", "-p", "P1", "-r", "R1", "-f", "*=0:80:TCP", "-n", "BLOCK"])
    assert sim.run_tool(add).rc == 0
    one = run(sim, remote.read_script())
    assert one.fingerprint["store"] != empty.fingerprint["store"] and one.fingerprint["os"] == empty.fingerprint["os"]
    assert guard.differing(empty.fingerprint, precheck(sim, empty.fingerprint)) == ["store"]
    # a value edited by hand within the same second, every whenChanged stamp kept: caught
    key = next(line.strip() for line in one.sections["store"].text.splitlines()
               if line.startswith("HKEY_") and "ipsecPolicy{" in line)
    assert sim.run_tool(["reg", "add", key, "/v", "description", "/t", "REG_SZ", "/d", "edited", "/f"]).rc == 0
    assert guard.differing(one.fingerprint, precheck(sim, one.fingerprint) or {}) == ["store"]
