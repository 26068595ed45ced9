"""The codec against real captured blobs (tests/fixtures/registry, each with its SOURCE note).

Expected values were worked out by hand from the bytes and the layouts of [MS-GPIPSEC] 2.2.1
(summarised in docs/policy-store.md), not by running the decoder.
"""
import os

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import blobs, registry
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import ANY, Address, AuthMethod, QmOffer

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "fixtures", "registry")
LOCAL = registry.LOCAL_ROOT


def fixture_tree(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return registry.parse_reg_file(handle.read())


@pytest.fixture(scope="module")
def gsec_tree():
    return fixture_tree("gsecurity_win10_local_store.reg")


@pytest.fixture(scope="module")
def gsec(gsec_tree):
    return registry.decode_store(gsec_tree)


def blob_of(tree, leaf):
    return tree.get(LOCAL + "\\" + leaf, "ipsecData").data


def test_gsecurity_policy_and_assignment(gsec):
    assert [p.name for p in gsec.policies] == ["GSecurity IP Policy"]
    pol = gsec.policies[0]
    assert pol.guid == "{c0ccd3b2-2871-436c-be91-4e919c8b5aa0}"
    assert pol.polling_interval == 180          # 0x2a30 = 10800 s
    assert gsec.assigned == "GSecurity IP Policy"
    assert gsec.domain is None


def test_gsecurity_rules(gsec):
    dialup, allif, default = gsec.policies[0].rules
    # NFA{78e7557c}: Interface-Type ffffffff (dial-up), Is-Tunnel 0, Is-Active 1, Kerberos.
    assert (dialup.name, dialup.filterlist, dialup.filteraction) == ("", "All IP Filter List", "Block")
    assert (dialup.conntype, dialup.active, dialup.default_response) == ("dialup", True, False)
    assert dialup.auth == (AuthMethod("kerberos"),)
    assert dialup.guid == "{78e7557c-d821-4f61-9144-f089c30899f6}"
    # NFA{7f50b588}: fdffffff (all), active.
    assert (allif.filterlist, allif.conntype, allif.active) == ("Blocked IP Filter List", "all", True)
    # NFA{57c1533e}: no ipsecFilterReference -> default response; Is-Active 0 on Vista+.
    assert default.default_response and not default.active and default.filterlist == ""
    # Its action has no ipsecName: named by its GUID.
    assert default.filteraction == "{ab61c8e1-10e8-4207-b84d-681caa72b848}"


def test_gsecurity_filter_actions(gsec):
    block = gsec.filteraction("Block")
    assert (block.action, block.offers, block.inpass) == ("block", (), False)
    response = gsec.filteraction("{ab61c8e1-10e8-4207-b84d-681caa72b848}")
    # 185-byte default-response blob: ESP 3DES(3)+SHA1(2), then AH SHA1(2); lifetimes 0, PFS 0.
    assert response.action == "negotiate"
    assert response.offers == (QmOffer(esp_conf="3DES", esp_auth="SHA1"), QmOffer(ah="SHA1"))
    assert response.qmpfs is False


def test_gsecurity_all_ip_filter(gsec):
    (flt,) = gsec.filterlist("All IP Filter List").filters
    assert (flt.src, flt.dst, flt.protocol, flt.src_port, flt.dst_port, flt.mirrored) == (ANY, ANY, 0, 0, 0, True)
    # bytes 51 25 fa 5c 69 ba e6 4b 9f 1c d1 92 43 2c 2f ee, mixed-endian
    assert flt.guid == "{5cfa2551-ba69-4be6-9f1c-d192432c2fee}"


def test_gsecurity_blocked_ports_filter_list(gsec):
    filters = gsec.filterlist("Blocked IP Filter List").filters
    assert len(filters) == 32
    ports = (22, 23, 135, 137, 138, 139, 445)
    expected = ([(6, p, 0) for p in ports] + [(6, 0, p) for p in ports]
                + [(17, p, 0) for p in ports] + [(17, 0, p) for p in ports])
    assert [(f.protocol, f.src_port, f.dst_port) for f in filters[:28]] == expected
    assert all(f.src == ANY and f.dst == ANY and f.mirrored for f in filters[:28])
    bcast = [Address("ip", "192.168.0.255", "255.255.255.255"), Address("ip", "192.168.1.255", "255.255.255.255")]
    assert [f.src for f in filters[28:30]] == bcast and [f.dst for f in filters[28:30]] == [ANY, ANY]
    assert [f.dst for f in filters[30:]] == bcast and [f.src for f in filters[30:]] == [ANY, ANY]
    assert all(f.protocol == 0 for f in filters[28:])


def test_gsecurity_blob_sizes_match_the_documented_layouts(gsec_tree):
    assert len(blob_of(gsec_tree, "ipsecPolicy{c0ccd3b2-2871-436c-be91-4e919c8b5aa0}")) == 25
    assert len(blob_of(gsec_tree, "ipsecNFA{57c1533e-02ee-4ca2-9bc2-69e4b6aaaba2}")) == 115
    assert len(blob_of(gsec_tree, "ipsecNegotiationPolicy{ab61c8e1-10e8-4207-b84d-681caa72b848}")) == 185
    # Vista+ filter blob: Data-Length = 32 * 70 = 0x8c0 and no trailer.
    assert len(blob_of(gsec_tree, "ipsecFilter{641c767c-fe15-40d4-831d-bd9a5d4fb9cf}")) == 24 + 32 * 70


def test_gsecurity_isakmp(gsec_tree):
    data = blobs.decode_isakmp_blob(blob_of(gsec_tree, "ipsecISAKMPPolicy{e627a7fc-634a-466b-bd85-4b84ffa02dee}"))
    assert data.methods == (blobs.MmMethod("3DES", "SHA1", 2, 28800, 0, 0),)
    assert (data.mmpfs, data.lifetime_s, data.qm_limit) == (False, 28800, 0)


@pytest.mark.parametrize("leaf", [
    "ipsecPolicy{c0ccd3b2-2871-436c-be91-4e919c8b5aa0}",
    "ipsecISAKMPPolicy{e627a7fc-634a-466b-bd85-4b84ffa02dee}",
    "ipsecNFA{57c1533e-02ee-4ca2-9bc2-69e4b6aaaba2}",
    "ipsecNFA{78e7557c-d821-4f61-9144-f089c30899f6}",
    "ipsecNFA{7f50b588-f6a5-4187-861f-d7ae6c28f78b}",
    "ipsecNegotiationPolicy{ab61c8e1-10e8-4207-b84d-681caa72b848}",
    "ipsecNegotiationPolicy{c4b410bf-dd4c-4275-bedc-abd92cca3f19}",
    "ipsecFilter{45f48cfc-241d-42f7-bcd4-927054db1b67}",
    "ipsecFilter{641c767c-fe15-40d4-831d-bd9a5d4fb9cf}",
])
def test_modern_encoder_reproduces_the_windows10_bytes(gsec_tree, gsec, leaf):
    """Re-encoding the decoded store gives Windows' own bytes (the ISAKMP object's GUID aside)."""
    encoded = registry.encode_store(gsec, flavor="modern", now=0)
    cls = leaf.split("{")[0]
    if cls == "ipsecISAKMPPolicy":
        (key,) = [k for k in encoded.keys() if "ipsecISAKMPPolicy{" in k]
    else:
        key = LOCAL + "\\" + leaf
    assert encoded.get(key, "ipsecData").data == blob_of(gsec_tree, leaf)


def test_gsecurity_reference_values_survive_encoding(gsec_tree, gsec):
    encoded = registry.encode_store(gsec, now=0)
    for leaf in ("ipsecNFA{78e7557c-d821-4f61-9144-f089c30899f6}",
                 "ipsecNegotiationPolicy{c4b410bf-dd4c-4275-bedc-abd92cca3f19}",
                 "ipsecFilter{641c767c-fe15-40d4-831d-bd9a5d4fb9cf}"):
        key = LOCAL + "\\" + leaf
        for name in ("ipsecFilterReference", "ipsecNegotiationPolicyReference",
                     "ipsecNegotiationPolicyAction", "ipsecNegotiationPolicyType", "className", "ipsecID"):
            assert encoded.get(key, name) == gsec_tree.get(key, name), (leaf, name)
        # Windows lists owners in the order rules were attached; only the set is reproducible.
        owners = encoded.get(key, "ipsecOwnersReference")
        assert owners.type == "REG_MULTI_SZ"
        assert sorted(owners.data) == sorted(gsec_tree.get(key, "ipsecOwnersReference").data)
    assert encoded.get(LOCAL, "ActivePolicy") == gsec_tree.get(LOCAL, "ActivePolicy")


# ---------------------------------------------------------------- Windows 2000 blobs (VPNease)

VPN_FILTER = "ipsecFilter{0a000002-0000-4000-8000-000000000002}"


@pytest.fixture(scope="module")
def vpn_tree():
    return fixture_tree("vpnease_win2000_l2tp_template.reg")


@pytest.fixture(scope="module")
def vpn(vpn_tree):
    return registry.decode_store(vpn_tree)


def test_win2000_filter_blob(vpn_tree, vpn):
    raw = blob_of(vpn_tree, VPN_FILTER)
    assert len(raw) == 95 and raw[16:20] == b"\x4a\x00\x00\x00" and raw[-1:] == b"\x00"   # 4 + 70, trailer
    (flt,) = vpn.filterlist("L2TP server filter").filters
    assert flt.src == ANY and flt.dst == Address("ip", "192.0.2.10", "255.255.255.255")
    assert (flt.protocol, flt.src_port, flt.dst_port, flt.mirrored) == (17, 1701, 0, True)     # a5 06 = 1701
    assert flt.guid == "{2aa93c48-1ce1-463f-aaa1-60d818ab6878}"


def test_win2000_filter_blob_reencodes_byte_for_byte_in_legacy_flavor(vpn_tree, vpn):
    encoded = registry.encode_store(vpn, flavor="legacy", now=0)
    assert encoded.get(LOCAL + "\\" + VPN_FILTER, "ipsecData").data == blob_of(vpn_tree, VPN_FILTER)
    modern = blobs.encode_filter_blob(vpn.filterlist("L2TP server filter").filters, "modern")
    assert len(modern) == 94 and modern[16:20] == b"\x46\x00\x00\x00"       # 70, no trailer


def test_win2000_isakmp_four_methods(vpn_tree):
    data = blobs.decode_isakmp_blob(blob_of(vpn_tree, "ipsecISAKMPPolicy{0a000003-0000-4000-8000-000000000003}"))
    # enc/hash/group per method: 3/2/2, 3/1/2, 1/2/1, 1/1/1; each 0x7080 = 28800 s; key-length words ignored.
    assert [str(m) for m in data.methods] == ["3DES-SHA1-2", "3DES-MD5-2", "DES-SHA1-1", "DES-MD5-1"]
    assert {m.lifetime_s for m in data.methods} == {28800}
    assert data.lifetime_s == 28800          # MM-Lifetime 0 on Win2000 means 28800


def test_win2000_default_response_action_ignores_garbage_slots(vpn):
    action = vpn.filteraction("{8A171DD3-77E3-11D1-8659-A04F00000000}")   # its ipsecName is the action GUID
    assert action.action == "negotiate" and action.qmpfs is False
    assert action.offers == (QmOffer(esp_conf="3DES", esp_auth="SHA1"), QmOffer(esp_conf="3DES", esp_auth="MD5"),
                             QmOffer(esp_conf="DES", esp_auth="SHA1"), QmOffer(esp_conf="DES", esp_auth="MD5"),
                             QmOffer(ah="SHA1"), QmOffer(ah="MD5"))
    (negotiate,) = vpn.filteraction("L2TP negotiate").offers
    assert negotiate == QmOffer(esp_conf="3DES", esp_auth="MD5", lifetime_s=300)       # 2c 01 = 300


def test_win2000_store_shape(vpn):
    (pol,) = vpn.policies
    assert vpn.assigned == "VPNease L2TP policy" and pol.polling_interval == 180
    response, l2tp = pol.rules
    assert response.default_response and not response.active
    assert l2tp.filterlist == "L2TP server filter" and l2tp.filteraction == "L2TP negotiate" and l2tp.active
    assert l2tp.auth == (AuthMethod("psk", "example-psk"),)
    assert "example-psk" not in repr(l2tp)


def test_win2000_store_round_trips_in_both_flavors(vpn):
    for flavor in ("legacy", "modern"):
        assert registry.decode_store(registry.encode_store(vpn, flavor=flavor, now=0)) == vpn
