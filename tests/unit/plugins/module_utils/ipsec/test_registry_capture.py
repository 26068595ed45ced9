"""The codec against real captured blobs (tests/fixtures/registry, each with its SOURCE note).

Expected values were worked out by hand from the bytes and the layouts of [MS-GPIPSEC] 2.2.1
(summarised in docs/policy-store.md), not by running the decoder.
"""
import os

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import registry
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


