"""winsim's netdiag /test:ipsec held to Microsoft's published samples (tests/fixtures/netdiag/, KB 813878):
after the KB's own ipseccmd commands, winsim prints the same words in the same order, GUIDs and
the host's address aside (the KB's markdown joined some lines, so words are compared, not lines)."""
import os
import re

import pytest

from winsim.host import SimHost

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "netdiag")
GUID = re.compile(r"\{[0-9A-Fa-f-]{36}\}")
KB_ADDRESS = "192.168.1.1"      # the address of the KB's machine in its sample


def sample(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        text = handle.read()
    body = text.split("# --- begin sample", 1)[1].split("\n", 1)[1].split("# --- end sample", 1)[0]
    return body


def words(text, address):
    text = GUID.sub("{GUID}", text.replace(address, "ADDRESS")).replace("\\\\", "\\")
    return text.split()


@pytest.fixture
def xp(tmp_path):
    return SimHost("xp1", "127.0.0.9", "xp", str(tmp_path))


def netdiag(host, *switches):
    result = host.run_tool(["netdiag", "/test:ipsec"] + list(switches))
    assert result.rc == 0 and result.stdout.endswith("\nThe command completed successfully\n")
    return result.stdout[:-len("\nThe command completed successfully\n")]


def kb_policy(host):
    for rule, spec in (("Block Inbound UDP 1434 Rule", "*=0:1434:UDP"), ("Block Outbound UDP 1434 Rule", "0=*:1434:UDP")):
        args = ["ipseccmd", "-w", "REG", "-p", "Block UDP 1434 Filter", "-r", rule, "-f", spec, "-n", "BLOCK"]
        assert host.run_tool(args + (["-x"] if "Inbound" in rule else [])).rc == 0


def test_no_policy_prints_the_kb_text(xp):
    assert words(netdiag(xp), xp.address) == words(sample("netdiag_ipsec_no_policy_1.txt"), KB_ADDRESS)


def test_assigned_policy_prints_the_kb_text(xp):
    kb_policy(xp)
    assert words(netdiag(xp), xp.address) == words(sample("netdiag_ipsec_local_policy_active_1.txt"), KB_ADDRESS)


def test_debug_listing_prints_the_kb_text_word_for_word(xp):
    kb_policy(xp)
    ours = netdiag(xp, "/debug")
    assert words(ours, xp.address) == words(sample("netdiag_ipsec_debug_local_policy_2filters_1.txt"), KB_ADDRESS)
    # one Policy Id per rule, as in the sample; the path names the assigned policy's key
    ids = re.findall(r"Policy Id: (\{[^}]+\})", ours)
    assert len(ids) == 2 and ids[0] != ids[1]
    [policy] = [p for p in xp.state().policies if p.name == "Block UDP 1434 Filter"]
    assert "ipsecPolicy" + policy.guid.upper() in ours
