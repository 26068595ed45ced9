"""winsim's packet filter: which packets a host's enforced IPsec filters drop, and the default
exemptions (KB 811832, KB 810207) that let some through whatever the filters say."""
import pytest

from winsim.host import SimHost
from winsim.state.firewall import Packet, packet_verdict

TCP, UDP = 6, 17


def lockdown_host(tmp_path, personality, address):
    """A host whose assigned local policy blocks every packet (one mirrored any<->any filter on every
    protocol), set up as an administrator would: netsh, or ipseccmd on XP."""
    host = SimHost("web1", address, personality, str(tmp_path / "web1"))
    if personality == "xp":
        argv = ["ipseccmd", "-w", "REG", "-p", "Lockdown", "-r", "All", "-f", "*+*", "-n", "BLOCK", "-x"]
        assert host.run_tool(argv).rc == 0
        return host
    for line in ('add policy name=Lockdown', 'add filterlist name=All',
                 'add filter filterlist=All srcaddr=any dstaddr=any protocol=ANY mirrored=yes',
                 'add filteraction name=Block action=block',
                 'add rule name=All policy=Lockdown filterlist=All filteraction=Block',
                 'set policy name=Lockdown assign=yes'):
        result = host.run_tool(["netsh", "ipsec", "static"] + line.split())
        assert result.rc == 0, (line, result)
    return host


@pytest.mark.parametrize("personality", ["xp", "2003", "modern"])
@pytest.mark.parametrize("address", ["127.0.0.2", "127.1.0.255", "127.1.1.0"])
def test_the_host_s_own_address_is_never_a_broadcast(tmp_path, personality, address):
    # A host at 127.1.0.255 has an ordinary unicast address in 127.0.0.0/8: XP's default exemption of
    # broadcasts must not let Telnet to it through (it did, when winsim took any .255 for a broadcast).
    host = lockdown_host(tmp_path, personality, address)
    assert packet_verdict(host, Packet("10.0.0.5", address, TCP, 50000, 23)) is not None


@pytest.mark.parametrize("dst", ["255.255.255.255", "127.255.255.255", "224.0.0.251"])
def test_broadcast_and_multicast_pass_on_xp_by_default_and_not_on_2003(tmp_path, dst):
    # NoDefaultExempt absent: XP (0) exempts broadcast and multicast, 2003 (3) exempts neither.
    for personality, passes in (("xp", True), ("2003", False)):
        host = lockdown_host(tmp_path / personality, personality, "127.0.0.2")
        verdict = packet_verdict(host, Packet("10.0.0.5", dst, UDP, 50000, 5353))
        assert (verdict is None) == passes, (personality, dst, verdict)


def test_an_address_ending_in_255_is_not_a_broadcast_for_another_host(tmp_path):
    host = lockdown_host(tmp_path, "xp", "127.0.0.2")
    assert packet_verdict(host, Packet("127.0.0.2", "10.1.0.255", TCP, 23, 50000)) is not None
