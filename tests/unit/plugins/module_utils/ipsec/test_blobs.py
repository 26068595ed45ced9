"""Every ipsecData blob type the engine decodes, read from what winsim's independent writer
(winsim/state/blobs.py and store.py, sharing no code with the engine) makes of the same objects;
robustness against bad input; a decode speed figure. The encoder tests pin our writer's bytes.

Byte layouts are those of [MS-GPIPSEC] 2.2.1 as docs/policy-store.md sums them up ("fs N.N" below is its section N.N).
"""
import struct
import time

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import blobs
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, Address, AuthMethod, Filter, FilterAction, IPsecError, QmOffer, Rule)
from tests.unit.plugins.module_utils.ipsec import winsim_side as W

# fs 7 worked example. SYNTHETIC (built to the layout, not captured): any -> me, TCP dst 445,
# mirrored, Vista+ framing (Data-Length 70, no trailer). "me" as 0.0.0.0/255.255.255.255 is [?].
WORKED_EXAMPLE = bytes.fromhex(
    "b520dc80c82ed111a89e00a0248d3021" "46000000" "01000000"
    "020000000000" "020000000000" "020000000000"
    "11111111222233334444555555555555" "01000000"
    "0000000000000000" "00000000ffffffff" "00000000" "06000000" "0000bd01" "00000000")
WORKED_GUID = "{11111111-2222-3333-4444-555555555555}"


# ----------------------------------------------------------------------------- filter lists

def test_worked_example_decodes():
    (flt,) = blobs.decode_filter_blob(WORKED_EXAMPLE)
    assert (flt.src, flt.dst, flt.protocol, flt.src_port, flt.dst_port, flt.mirrored) == (ANY, ME, 6, 0, 445, True)
    assert flt.guid == WORKED_GUID


def test_legacy_framed_filter_list_decodes():
    # Windows 2000's framing (tests/fixtures/registry/vpnease_win2000_l2tp_template.reg): Data-Length
    # counts the count word and the records, and a zero byte ends the blob
    flt = Filter(ANY, ME, 6, 0, 445, True, guid=WORKED_GUID)
    raw = W.filter_blob([flt, flt], "legacy")
    assert raw[-1] == 0 and struct.unpack_from("<I", raw, 16)[0] == len(raw) - 21      # the input is legacy
    assert blobs.decode_filter_blob(raw) == (flt, flt)


def test_decoder_ignores_data_length_and_accepts_one_trailing_zero():
    broken = WORKED_EXAMPLE[:16] + b"\xff\xff\x00\x00" + WORKED_EXAMPLE[20:]
    assert blobs.decode_filter_blob(broken) == blobs.decode_filter_blob(WORKED_EXAMPLE + b"\x00")
    with pytest.raises(IPsecError, match="unexpected bytes"):
        blobs.decode_filter_blob(WORKED_EXAMPLE + b"\x00\x00")


def test_filter_fields_decode():
    filters = (
        Filter(Address("ip", "10.0.0.0", "255.0.0.0"), Address("ip", "192.168.1.7", "255.255.255.255"),
               17, 1434, 53, False, "udp with text", "{00000001-0000-4000-8000-000000000000}"),
        Filter(Address("dns", "db.example.com"), ME, 6, 0, 1433, True, "", "{00000002-0000-4000-8000-000000000000}"),
        Filter(ANY, Address("dns", "mail.example.org"), 255, 0, 0, True, "ünïcode ✓",
               "{00000003-0000-4000-8000-000000000000}"),
    )
    for flavor in ("modern", "legacy"):
        decoded = blobs.decode_filter_blob(W.filter_blob(filters, flavor))
        assert decoded == filters
        assert [f.description for f in decoded] == [f.description for f in filters]
        assert [f.guid for f in decoded] == [f.guid for f in filters]


def test_v2_section_carries_ranges_ipv6_and_server_types():
    # fs 5.6 is spec only: no capture confirms this layout; winsim's writer and our reader agree on it.
    filters = (
        Filter(Address("range", "10.0.0.5", end="10.0.0.20"), ME, 6, 0, 80, True, guid="{00000008-0000-4000-8000-000000000000}"),
        Filter(Address("ip", "2001:db8::", "32"), ME, 0, 0, 0, True, guid="{00000009-0000-4000-8000-000000000000}"),
        Filter(Address("server", "DNS"), ME, 17, 53, 0, True, guid="{0000000a-0000-4000-8000-000000000000}"),
        Filter(ME, Address("server", "GATEWAY"), 0, 0, 0, True, guid="{0000000b-0000-4000-8000-000000000000}"),
        Filter(ANY, Address("ip", "2001:db8::1", "128"), 6, 0, 443, False,
               guid="{0000000c-0000-4000-8000-000000000000}"),
        Filter(Address("dns", "h.example.com"), Address("ip", "10.9.0.0", "255.255.0.0"), 17, 0, 0, True, "d",
               "{0000000d-0000-4000-8000-000000000000}"),
    )
    raw = W.filter_blob(filters, "modern")      # Windows 2000/XP/2003 write no v2 section
    assert blobs.FILTER_V2_SECTION in raw
    assert blobs.decode_filter_blob(raw) == filters


def test_server_types_are_read_from_the_legacy_records_special_byte():
    # a destination server type is 0x80 + its code (fs 5.5); the v2 section cut off, the legacy
    # records alone must still say which server
    raw = W.filter_blob([Filter(ANY, ME), Filter(ME, Address("server", "WINS")),
                         Filter(Address("server", "DHCP"), ME)], "legacy")
    assert [(f.src, f.dst) for f in blobs.decode_filter_blob(raw)] == [
        (ANY, ME), (ME, Address("server", "WINS")), (Address("server", "DHCP"), ME)]


_octet = st.integers(0, 255)
_ipv4 = st.tuples(_octet, _octet, _octet, _octet).map(lambda t: "%d.%d.%d.%d" % t)
_side = st.one_of(
    st.just(ANY), st.just(ME),
    st.builds(lambda a: Address("ip", a, "255.255.255.255"), _ipv4.filter(lambda a: a != "0.0.0.0")),
    st.builds(lambda a, p: Address("ip", a, str(__import__("ipaddress").IPv4Network((0, p)).netmask)),
              _ipv4.filter(lambda a: a != "0.0.0.0"), st.integers(1, 31)),
    st.builds(lambda n: Address("dns", n), st.from_regex(r"[a-z][a-z0-9]{0,10}\.example\.com", fullmatch=True)),
)
_filter = st.builds(Filter, _side, _side, st.integers(0, 255), st.integers(0, 65535), st.integers(0, 65535),
                    st.booleans(), st.text(max_size=12).filter(lambda s: "\x00" not in s))


@settings(max_examples=150, deadline=None)
@given(st.lists(_filter, max_size=6), st.sampled_from(["modern", "legacy"]))
def test_decodes_any_filter_list_winsim_writes_property(filters, flavor):
    decoded = blobs.decode_filter_blob(W.filter_blob(filters, flavor))
    assert decoded == tuple(filters)
    assert [f.description for f in decoded] == [f.description for f in filters]


# --------------------------------------------------------------------------------- policies

@pytest.mark.parametrize("flavor", ["modern", "legacy"])
def test_policy_blob_decodes_minutes(flavor):
    assert blobs.decode_policy_blob(W.policy_blob(10800, flavor)) == 180
    assert blobs.decode_policy_blob(W.policy_blob(300, flavor)) == 5
    assert blobs.decode_policy_blob(W.policy_blob(0, flavor)) == 180        # 0 means 10800 s (fs 4.1)


# ----------------------------------------------------------------------- filter actions (NegPol)

@pytest.mark.parametrize("flavor", ["modern", "legacy"])
def test_negpol_offers_pfs_and_soft_decode(flavor):
    # AH+ESP is one offer with two algorithm slots (fs 5.4); soft is an offer with none [?]
    offers = (QmOffer("SHA1", "3DES", "MD5", 50000, 900), QmOffer("", "DES", "None"), QmOffer("MD5"),
              QmOffer("", "None", "SHA1"))
    for qmpfs, soft in ((True, True), (False, False), (False, True)):
        raw = W.negpol_blob(FilterAction("S", "negotiate", soft=soft, qmpfs=qmpfs, offers=offers), flavor)
        assert blobs.decode_negpol_blob(raw) == blobs.NegPolData(offers, qmpfs, soft)


def test_the_captured_25_byte_block_blob_decodes_without_offers():
    # the Windows 10 capture's "Block" action (tests/fixtures/registry/gsecurity_win10_local_store.reg)
    raw = bytes.fromhex("b920dc80c82ed111a89e00a0248d3021" "04000000" "00000000" "00")
    assert blobs.decode_negpol_blob(raw) == blobs.NegPolData((), False, False)


def test_negpol_unknown_offer_type_is_an_error():
    raw = bytearray(W.negpol_blob(FilterAction("S", "negotiate", offers=(QmOffer("MD5"),))))
    raw[24 + 20 + 8] = 7                                               # offer 1, slot 1: type 7
    with pytest.raises(IPsecError, match="unknown offer type 7"):
        blobs.decode_negpol_blob(bytes(raw))


# ------------------------------------------------------------------------------- rules (NFA)

def test_nfa_kerberos_with_and_without_the_vista_tail():
    for flavor in ("modern", "legacy"):                 # with the alternate-auth tail (fs 5.3), without
        raw = W.nfa_blob(Rule("r", "fl", "fa"), flavor)
        assert blobs.decode_nfa_blob(raw) == blobs.NfaData((AuthMethod("kerberos"),), "all", "", True)


def test_nfa_auth_conntype_tunnel_decode():
    auth = (AuthMethod("psk", "s3cret ünï"), AuthMethod("cert", "CN=Root CA, O=Example"), AuthMethod("kerberos"))
    for flavor in ("modern", "legacy"):
        for conntype, tunnel, active in (("lan", "", False), ("dialup", "192.0.2.1", True),
                                         ("all", "2001:db8::9", True), ("all", "gw.example.com", True)):
            if tunnel.count(":") and flavor == "legacy":
                continue
            raw = W.nfa_blob(Rule("r", auth=auth, conntype=conntype, tunnel=tunnel, active=active), flavor)
            assert blobs.decode_nfa_blob(raw) == blobs.NfaData(auth, conntype, tunnel, active)


def test_nfa_psk_is_stored_in_clear_but_never_shown():
    raw = W.nfa_blob(Rule("r", auth=(AuthMethod("psk", "hunter2"),)))
    assert "hunter2".encode("utf-16-le") in raw                         # fs 5.2: plaintext in the store
    decoded = blobs.decode_nfa_blob(raw)
    assert "hunter2" not in repr(decoded)


def test_nfa_unknown_values_are_errors():
    raw = bytearray(W.nfa_blob(Rule("r"), "legacy"))
    raw[24] = 9
    with pytest.raises(IPsecError, match="unknown type 9"):
        blobs.decode_nfa_blob(bytes(raw))


# ------------------------------------------------------------------------------- robustness

SAMPLES = {       # each decoder with a valid blob of its type: the worked example, winsim's others
    "ipsecFilter": (blobs.decode_filter_blob, WORKED_EXAMPLE),
    "ipsecPolicy": (blobs.decode_policy_blob, W.policy_blob(10800)),
    "ipsecNegotiationPolicy": (blobs.decode_negpol_blob,
                               W.negpol_blob(FilterAction("S", "negotiate", offers=(QmOffer("", "3DES", "SHA1"),)))),
    "ipsecNFA": (blobs.decode_nfa_blob, W.nfa_blob(Rule("r", auth=(AuthMethod("psk", "k"),)))),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_truncation_is_a_clear_error(kind):
    decode, raw = SAMPLES[kind]
    decode(raw)
    # An NFA cut right before its optional Vista+ tail is a complete tail-less (2000/XP) NFA.
    valid_cut = 20 + struct.unpack_from("<I", raw, 16)[0] if kind == "ipsecNFA" else None
    for cut in range(len(raw) - 1):
        if cut == valid_cut:
            continue
        with pytest.raises(IPsecError, match="the-key"):
            decode(raw[:cut], "the-key")


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_wrong_blob_type_is_named(kind):
    decode, raw = SAMPLES[kind]
    other = SAMPLES["ipsecPolicy" if kind != "ipsecPolicy" else "ipsecFilter"][1]
    with pytest.raises(IPsecError, match="not an %s blob" % kind):
        decode(other)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_corrupted_blobs_fail_only_with_ipsecerror(kind, data):
    decode, raw = SAMPLES[kind]
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        mutated[data.draw(st.integers(16, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        decode(bytes(mutated))
    except IPsecError:
        pass


# ------------------------------------------------------------------------------ performance

def test_decode_speed_figure(capsys):
    """Not a timed assertion: prints the figure the benchmark issue tracks (10k filters)."""
    filters = [Filter(ANY, Address("ip", "10.%d.%d.1" % (i // 250, i % 250), "255.255.255.255"), 6, 0, i % 65535 + 1)
               for i in range(10000)]
    raw = W.filter_blob(filters, "modern")
    start = time.perf_counter()
    decoded = blobs.decode_filter_blob(raw)
    elapsed = time.perf_counter() - start
    assert len(decoded) == 10000 and decoded[-1] == filters[-1]
    with capsys.disabled():
        print("\n[figure] decode_filter_blob: 10000 filters, %d bytes, %.1f ms" % (len(raw), elapsed * 1000))


