# -*- coding: utf-8 -*-
"""Validation and normalisation of user input into the model."""
import pytest
from hypothesis import given, strategies as st

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, Address, Filter, QmOffer, ValidationError,
    filter_from_dict, format_qmsecmethods, parse_address, parse_bool,
    parse_description, parse_int, parse_mask, parse_name, parse_port, parse_protocol, parse_qmsecmethods,
)
from tests.unit.hostile_corpus import HOSTILE_ADDRESSES, HOSTILE_INTEGERS, HOSTILE_NAMES, UNREPRESENTABLE


def rejects(func, *args, match=None):
    with pytest.raises(ValidationError, match=match) as err:
        func(*args)
    return str(err.value)


# ---- names ----

@pytest.mark.parametrize("name", [n for n in HOSTILE_NAMES if n == n.strip() and "\t" not in n])
def test_names_keep_every_printable_character(name):
    assert parse_name("name", name, max_len=5000) == name


@pytest.mark.parametrize("bad", ["", "   ", " x", "x ", "tab\tname", None, 7] + UNREPRESENTABLE
                         + ["bell\x07", "line\u2028sep"])
def test_bad_names_are_rejected(bad):
    message = rejects(parse_name, "policy.name", bad)
    assert message.startswith("policy.name: ")
    assert "expected a non-empty name of at most 255 characters" in message


def test_name_length_limit():
    assert parse_name("n", "x" * 255) == "x" * 255
    assert "256 characters long" in rejects(parse_name, "n", "x" * 256)
    assert parse_name("n", "x" * 10, max_len=10)


def test_description_may_be_empty_but_not_control():
    assert parse_description("d", None) == ""
    assert parse_description("d", "") == ""
    rejects(parse_description, "d", "a\nb")


# ---- addresses ----

@pytest.mark.parametrize("text,expected", [
    ("me", ME), ("ME", ME), (" Any ", ANY),
    ("dns", Address("server", "DNS")), ("Gateway", Address("server", "GATEWAY")),
    ("wins", Address("server", "WINS")), ("DHCP", Address("server", "DHCP")),
    ("10.1.2.3", Address("ip", "10.1.2.3")),
    ("2001:DB8:0:0::1", Address("ip", "2001:db8::1")),
    ("10.0.0.0/8", Address("ip", "10.0.0.0", "255.0.0.0")),
    ("10.1.0.0/255.255.0.0", Address("ip", "10.1.0.0", "255.255.0.0")),
    ("fe80::/64", Address("ip", "fe80::", "64")),
    ("10.0.0.1-10.0.0.9", Address("range", "10.0.0.1", end="10.0.0.9")),
    ("::1-::2", Address("range", "::1", end="::2")),
    ("Server01.Example.COM.", Address("dns", "server01.example.com")),
    ("my-host", Address("dns", "my-host")),
    ("10-20.example", Address("dns", "10-20.example")),
])
def test_addresses_are_normalised(text, expected):
    assert parse_address("filters[0].src", text) == expected


@pytest.mark.parametrize("text,reason", [
    ("10.0.0.256", "not an IP address"), ("1.2.3", "not an IP address"), ("01.2.3.4", "not an IP address"),
    ("10.0.0.9-10.0.0.1", "starts after it ends"), ("10.0.0.1-::1", "mixes IPv4 and IPv6"),
    ("-bad.example", "RFC 1123"), ("bad_name", "RFC 1123"), ("a..b", "RFC 1123"),
    ("fe80::1%eth0", "zone"),
    ("x" * 64 + ".com", "RFC 1123"), ("host; rm", "RFC 1123"),
])
def test_bad_addresses_are_rejected(text, reason):
    message = rejects(parse_address, "filters[0].src", text)
    assert message.startswith("filters[0].src: %r is not valid" % text)
    assert reason in message and "expected me, any" in message


@pytest.mark.parametrize("text,reason", [("10.0.0.0/33", "longer than 32"),
                                         ("10.0.0.0/255.0.255.0", "not contiguous")])
def test_bad_masks_inside_addresses(text, reason):
    message = rejects(parse_address, "filters[0].src", text)
    assert reason in message and message.endswith("expected a contiguous dotted mask (255.255.255.0) "
                                                  "or a prefix length 0-32")


@pytest.mark.parametrize("bad", HOSTILE_ADDRESSES + ["  ", 10])
def test_hostile_addresses_are_rejected(bad):
    assert rejects(parse_address, "dst", bad).startswith("dst: ")


# ---- masks ----

HOST = Address("ip", "10.1.2.3")


@pytest.mark.parametrize("value,expected", [
    (None, "255.255.255.255"), ("", "255.255.255.255"), (24, "255.255.255.0"), ("16", "255.255.0.0"),
    (0, "0.0.0.0"), (32, "255.255.255.255"), ("255.255.255.128", "255.255.255.128"),
])
def test_ipv4_masks(value, expected):
    assert parse_mask("src_mask", value, HOST) == expected


def test_ipv6_prefixes():
    v6 = Address("ip", "2001:db8::")
    assert parse_mask("m", None, v6) == "128"
    assert parse_mask("m", 64, v6) == "64"
    assert "0-128" in rejects(parse_mask, "m", 129, v6)
    rejects(parse_mask, "m", "255.255.0.0", v6)


@pytest.mark.parametrize("address", [ME, ANY, Address("range", "1.1.1.1", end="1.1.1.2"),
                                     Address("dns", "a.example"), Address("server", "DNS")])
def test_masks_refused_where_they_do_not_apply(address):
    assert parse_mask("m", None, address) == ""
    assert "does not apply" in rejects(parse_mask, "filters[1].dst_mask", "255.0.0.0", address)


@pytest.mark.parametrize("bad", ["255.0.255.0", "33", True, 1.5, "/24", "255.255.255.256"])
def test_bad_masks(bad):
    rejects(parse_mask, "m", bad, HOST)


def test_mask_given_twice():
    assert "already has one" in rejects(parse_mask, "m", 8, Address("ip", "10.0.0.0", "255.0.0.0"))
    assert parse_mask("m", None, Address("ip", "10.0.0.0", "255.0.0.0")) == "255.0.0.0"


@given(st.integers(0, 32))
def test_prefix_and_dotted_agree(prefix):
    dotted = parse_mask("m", prefix, HOST)
    assert parse_mask("m", dotted, HOST) == dotted
    assert bin(sum(int(o) << (8 * (3 - i)) for i, o in enumerate(dotted.split(".")))).count("1") == prefix


# ---- protocols, ports, booleans, actions ----

@pytest.mark.parametrize("value,expected", [("ANY", 0), ("icmp", 1), ("Tcp", 6), ("udp", 17), ("RAW", 255),
                                            (47, 47), ("50", 50), (0, 0)])
def test_protocols(value, expected):
    assert parse_protocol("protocol", value) == expected


@pytest.mark.parametrize("bad", [256, -1, "gre", True, 6.0, "6 ", "", None])
def test_bad_protocols(bad):
    if bad == "6 ":
        assert parse_protocol("p", bad) == 6     # surrounding blanks are harmless
        return
    assert "expected ANY, ICMP, TCP, UDP, RAW or a protocol number 0-255" in rejects(parse_protocol, "p", bad)


@pytest.mark.parametrize("value,expected", [(0, 0), ("1434", 1434), (65535, 65535), ("080", 80)])
def test_ports(value, expected):
    assert parse_port("dst_port", value, 17) == expected


@pytest.mark.parametrize("bad", HOSTILE_INTEGERS)
def test_bad_ports(bad):
    message = rejects(parse_port, "filters[0].dst_port", bad, 6)
    assert message.endswith("expected an integer 0-65535 (0 = any port)")


def test_parse_int_names_its_range():
    assert parse_int("polling_interval", "180", 0, 43200) == 180
    assert rejects(parse_int, "polling_interval", "3h", 0, 43200).endswith("expected an integer 0-43200")


def test_port_message_matches_the_contract():
    assert rejects(parse_port, "filters[0].dst_port", "1434; x", 17) == \
        "filters[0].dst_port: '1434; x' is not valid; expected an integer 0-65535 (0 = any port)"


def test_ports_only_with_tcp_or_udp():
    assert parse_port("p", 0, 1) == 0
    assert "protocol is ICMP" in rejects(parse_port, "p", 80, 1)
    assert "protocol is 47" in rejects(parse_port, "p", 80, 47)


@pytest.mark.parametrize("value,expected", [(True, True), ("yes", True), ("Y", True), ("no", False),
                                            ("n", False), (0, False), ("on", True), ("false", False)])
def test_bools(value, expected):
    assert parse_bool("mirrored", value) is expected


@pytest.mark.parametrize("bad", ["maybe", 2, None, "", 1.0])
def test_bad_bools(bad):
    assert "expected yes or no" in rejects(parse_bool, "mirrored", bad)


# ---- quick-mode methods ----

def test_qmsecmethods_grammar():
    offers = parse_qmsecmethods("qmsecmethods", "ESP[3DES,SHA1]:100000k/3600s AH[md5] "
                                                "AH[SHA1]+ESP[DES,MD5]:3600s esp[None,sha1]:5000k")
    assert offers == (
        QmOffer(esp_conf="3DES", esp_auth="SHA1", lifetime_kb=100000, lifetime_s=3600),
        QmOffer(ah="MD5"),
        QmOffer(ah="SHA1", esp_conf="DES", esp_auth="MD5", lifetime_s=3600),
        QmOffer(esp_conf="None", esp_auth="SHA1", lifetime_kb=5000),
    )
    assert format_qmsecmethods(offers) == ("ESP[3DES,SHA1]:100000k/3600s AH[MD5] "
                                           "AH[SHA1]+ESP[DES,MD5]:3600s ESP[None,SHA1]:5000k")
    assert parse_qmsecmethods("q", ["AH[MD5]:204800k/300s", "ESP[DES,SHA1]:30000k/480s"])[1].lifetime_s == 480


@pytest.mark.parametrize("bad", ["", "ESP[3DES]", "AH[None]", "ESP[None,None]", "AH[MD5]+", "ESP[AES,SHA1]",
                                 "AH[MD5]ESP[DES,MD5]", "ESP[DES,MD5]:", "ESP[DES,MD5]:100k/", "ESP[DES,MD5]:1h",
                                 "ESP[DES,MD5]+AH[MD5]", 5])
def test_bad_qmsecmethods(bad):
    message = rejects(parse_qmsecmethods, "filteraction.qmsecmethods", bad)
    assert message.startswith("filteraction.qmsecmethods")
    assert "ESP[3DES,SHA1]:100000k/3600s" in message


ALG = st.sampled_from
OFFERS = st.builds(
    lambda ah, esp, kb, s: QmOffer(ah=ah, esp_conf=esp[0], esp_auth=esp[1], lifetime_kb=kb, lifetime_s=s),
    ALG(["", "MD5", "SHA1"]),
    ALG([("", ""), ("DES", "MD5"), ("3DES", "SHA1"), ("None", "SHA1"), ("3DES", "None")]),
    st.integers(0, 10 ** 7), st.integers(0, 10 ** 6),
).filter(lambda o: o.ah or o.esp_conf)


@given(st.lists(OFFERS, min_size=1, max_size=4))
def test_qmsecmethods_round_trip(offers):
    assert parse_qmsecmethods("q", format_qmsecmethods(offers)) == tuple(offers)


# ---- filters ----

def test_filter_defaults_follow_the_kb():
    flt = filter_from_dict("filters[0]", {"protocol": "UDP", "dst_port": 1434})
    assert flt == Filter(src=ANY, dst=ME, protocol=17, src_port=0, dst_port=1434, mirrored=True)


def test_filter_normalises_every_field():
    flt = filter_from_dict("filters[0]", {"src": "10.1.0.0", "src_mask": 16, "dst": "Me", "protocol": "tcp",
                                          "dst_port": "445", "mirrored": "no", "description": "SMB"})
    assert flt.src == Address("ip", "10.1.0.0", "255.255.0.0")
    assert (flt.dst, flt.protocol, flt.dst_port, flt.mirrored, flt.description) == (ME, 6, 445, False, "SMB")
    assert flt.key() == filter_from_dict("f", {"src": "10.1.0.0/255.255.0.0", "protocol": 6,
                                              "dst_port": 445, "mirrored": False}).key()


def test_filter_host_gets_a_host_mask_and_zero_network_is_any():
    assert filter_from_dict("f", {"dst": "192.168.1.5"}).dst == Address("ip", "192.168.1.5", "255.255.255.255")
    assert filter_from_dict("f", {"src": "0.0.0.0", "src_mask": "0.0.0.0"}).src == ANY


@pytest.mark.parametrize("d, option", [
    ({"src": "0.0.0.0"}, "f.src"), ({"dst": "0.0.0.0"}, "f.dst"), ({"src": "0.0.0.0/32"}, "f.src"),
    ({"src": "0.0.0.0", "src_mask": "255.255.255.255"}, "f.src"), ({"dst": "0.0.0.0", "dst_mask": 32}, "f.dst"),
])
def test_zero_address_is_refused_it_would_read_back_as_me(d, option):
    # issue 12.3: the store writes me as 0.0.0.0/255.255.255.255; 0.0.0.0 was written, read back as me
    with pytest.raises(ValidationError) as err:
        filter_from_dict("f", d)
    assert err.value.option == option
    assert "me" in err.value.accepted and "any" in err.value.accepted and "read the filter back as me" in str(err.value)


def test_zero_network_with_a_mask_is_a_subnet_and_round_trips():
    assert filter_from_dict("f", {"src": "0.0.0.0/8"}).src == Address("ip", "0.0.0.0", "255.0.0.0")


@pytest.mark.parametrize("text", ["::ffff:10.0.0.1", "0:0:0:0:0:ffff:a00:1", "::10.0.0.1", "::ffff:10.0.0.0/120",
                                  "::ffff:10.0.0.1-::ffff:10.0.0.9"])
def test_ipv4_written_as_ipv6_is_refused_with_the_ipv4_form(text):
    message = rejects(parse_address, "f.src", text)
    assert "the IPv4 address itself (10.0.0." in message


@pytest.mark.parametrize("text", ["0x7f000001", "0x7f.0x0.0x0.0x1", "0x7f.0.0.0x1", "10.0x1"])
def test_names_windows_would_read_as_numeric_addresses_are_refused(text):
    assert "dotted decimal" in rejects(parse_address, "f.src", text)


@pytest.mark.parametrize("text", ["deadbeef", "x0.example", "0x7f.example"])
def test_names_with_hex_looking_labels_stay_names(text):
    assert parse_address("f.src", text).kind == "dns"


@pytest.mark.parametrize("d,option,reason", [
    ({"src": "DNS", "dst": "any"}, "filters[2].dst", "server type DNS"),
    ({"src": "any", "dst": "WINS"}, "filters[2].src", "server type WINS"),
    ({"src": "10.0.0.1", "dst": "::1"}, "filters[2].dst", "same IP version"),
    ({"dst_port": "1434; x", "protocol": "udp"}, "filters[2].dst_port", ""),
    ({"dst_port": 80}, "filters[2].dst_port", "protocol is ANY"),
    ({"protocol": "icmp", "src_port": 7}, "filters[2].src_port", "protocol is ICMP"),
    ({"srcport": 80}, "filters[2].srcport", "unknown key"),
    ({"src_mask": 8}, "filters[2].src_mask", "does not apply"),
    ({"mirrored": "sometimes"}, "filters[2].mirrored", ""),
    ({"description": "a\nb"}, "filters[2].description", "control"),
])
def test_bad_filters_name_the_option(d, option, reason):
    message = rejects(filter_from_dict, "filters[2]", d)
    assert message.startswith(option + ": ")
    assert reason in message


def test_server_type_with_me_is_fine():
    flt = filter_from_dict("f", {"src": "me", "dst": "gateway", "protocol": "icmp"})
    assert flt.dst == Address("server", "GATEWAY") and flt.src == ME


def test_filter_needs_a_mapping():
    assert "a mapping" in rejects(filter_from_dict, "filters[0]", "*=0:1434:UDP")
