# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The binary `ipsecData` blobs of the static IPsec policy store, decoded.

Layouts follow [MS-GPIPSEC] 2.2.1.x as summarised (and corrected against the real captures in
tests/fixtures/registry/) in docs/policy-store.md; section numbers below ("fs 5.5") are that page's.

Decoders parse by counts and string lengths and never trust Data-Length (fs 3); they accept zero or
one trailing 0x00, and both layouts: Vista+ netsh's and Windows 2000/XP/2003's (the filter blob's
Data-Length and trailer, the NFA's optional alternate-auth tail, the 64/8 words Windows 2000 writes
in quick-mode algorithm slots). There are no encoders: the engine writes the store only through
Windows' own tools. The main-mode blob (ipsecISAKMPPolicy) is not read: no module reports main-mode
settings.

Standard library only: this ships to controllers.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
import uuid
from dataclasses import dataclass
from typing import Tuple

from .model import ANY, ME, Address, AuthMethod, Filter, IPsecError, QmOffer

# Blob type GUIDs, as stored (mixed-endian GUID bytes), fs 3.
POLICY_BLOB = uuid.UUID("22202163-4f4c-11d1-863b-00a0248d3021").bytes_le
NFA_BLOB = uuid.UUID("11bbac00-498d-11d1-8639-00a0248d3021").bytes_le
NEGPOL_BLOB = uuid.UUID("80dc20b9-2ec8-11d1-a89e-00a0248d3021").bytes_le
FILTER_BLOB = uuid.UUID("80dc20b5-2ec8-11d1-a89e-00a0248d3021").bytes_le
FILTER_V2_SECTION = uuid.UUID("35fecd3d-ae29-4373-8a6a-c5d8fab2fb08").bytes_le   # [S] only

# NFA alternate-auth tail markers (fs 5.3).
ALT_AUTH_ID1 = b"\x01" * 16
ALT_AUTH_ID2 = b"\x01" * 15 + b"\x02"
ALT_IPV6_TUNNEL_ID = b"\x01" * 15 + b"\x03"

POLLING_DEFAULT_SECONDS = 10800         # fs 4.1: 0 in the blob means 10800 s

_U32 = struct.Struct("<I")
_EMPTY_STR = b"\x02\x00\x00\x00\x00\x00"
_EMPTY3 = _EMPTY_STR * 3
# Legacy filter record after its three strings (fs 5.5): guid, mirrored, src, srcmask, dst, dstmask,
# tunnel (network order -> read as raw 4-byte strings), protocol, ports (LE), is-tunnel, special, options.
_FILTER_FIXED = struct.Struct("<IHH8sI4s4s4s4s4sIHHBBH")   # GUID split as Data1..Data4
_V2_ADDR = struct.Struct("<II16s16s")
_V2_PORT = struct.Struct("<IHH")


def _err(what: str, detail: str) -> IPsecError:
    return IPsecError("%s: %s" % (what, detail))


def bytes_to_guid(raw: bytes) -> str:
    """16 stored bytes -> '{xxxxxxxx-...}' in lower case, as Windows tools write it (fs 2.1)."""
    return "{%s}" % uuid.UUID(bytes_le=bytes(raw))


class _Reader:
    """Bounds-checked cursor over one blob; every overrun names the blob and the field."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str, pos: int = 0):
        self.data = data
        self.pos = pos
        self.what = what

    def need(self, size: int, field: str) -> None:
        if self.pos + size > len(self.data):
            raise _err(self.what, "truncated at offset %d reading %s (%d bytes needed, %d left)"
                       % (self.pos, field, size, len(self.data) - self.pos))

    def u32(self, field: str) -> int:
        self.need(4, field)
        value = _U32.unpack_from(self.data, self.pos)[0]
        self.pos += 4
        return value

    def raw(self, size: int, field: str) -> bytes:
        self.need(size, field)
        value = self.data[self.pos:self.pos + size]
        self.pos += size
        return value

    def string(self, field: str) -> str:
        """fs 5.1: u32 byte length, then UTF-16LE including its NUL (length 0 allowed)."""
        size = self.u32(field + " length")
        return _utf16(self.raw(size, field))

    def header(self, type_guid: bytes, kind: str) -> int:
        self.need(20, "blob header")
        if self.data[:16] != type_guid:
            raise _err(self.what, "not an %s blob (type GUID %s, expected %s)"
                       % (kind, bytes_to_guid(self.data[:16]), bytes_to_guid(type_guid)))
        self.pos = 16
        return self.u32("Data-Length")

    def end(self) -> None:
        """fs 3: accept zero or one trailing 0x00, nothing else."""
        rest = self.data[self.pos:]
        if rest not in (b"", b"\x00"):
            raise _err(self.what, "%d unexpected bytes after offset %d" % (len(rest), self.pos))


def _utf16(raw: bytes) -> str:
    text = raw.decode("utf-16-le", errors="replace")
    cut = text.find("\x00")
    return text if cut < 0 else text[:cut]


# --------------------------------------------------------------------------------- ipsecPolicy

def decode_policy_blob(blob: bytes, what: str = "ipsecPolicy") -> int:
    """-> polling interval in minutes (fs 4.1: stored in seconds, 0 meaning 10800)."""
    rd = _Reader(bytes(blob), what)
    rd.header(POLICY_BLOB, "ipsecPolicy")
    seconds = rd.u32("Polling-Interval") or POLLING_DEFAULT_SECONDS
    rd.end()
    return seconds // 60


# ------------------------------------------------------------------- ipsecNegotiationPolicy

_AH_IDS = {"MD5": 1, "SHA1": 2}                           # fs 5.4 [S+C]
_ESP_CONF_IDS = {"None": 0, "DES": 1, "3DES": 3}          # [C]; None = 0 is [?]
_ESP_AUTH_IDS = {"None": 0, "MD5": 1, "SHA1": 2}
_AH_NAMES = {v: k for k, v in _AH_IDS.items()}
_ESP_CONF_NAMES = {v: k for k, v in _ESP_CONF_IDS.items()}
_ESP_AUTH_NAMES = {v: k for k, v in _ESP_AUTH_IDS.items()}
_OFFER = struct.Struct("<IIIII60s")
_SLOT = struct.Struct("<III8s")


@dataclass(frozen=True)
class NegPolData:
    """What a filter action's blob holds: its quick-mode offers (fs 5.4). The action is not here."""
    offers: Tuple[QmOffer, ...] = ()
    qmpfs: bool = False
    soft: bool = False


def decode_negpol_blob(blob: bytes, what: str = "ipsecNegotiationPolicy") -> NegPolData:
    rd = _Reader(bytes(blob), what)
    rd.header(NEGPOL_BLOB, "ipsecNegotiationPolicy")
    count = rd.u32("Security-Offer-Count")
    rd.need(80 * count, "%d security offers" % count)
    offers, qmpfs, soft = [], False, False
    for index in range(count):
        secs, kb, _opts, pfs, algos, slots = _OFFER.unpack_from(rd.data, rd.pos)
        rd.pos += 80
        qmpfs = qmpfs or pfs == 1           # [?] 1 = PFS on, against the spec's table (fs 5.4)
        if algos == 0:
            soft = True                     # [?] fs 5.4: fallback-to-clear as an empty offer
            continue
        if algos > 3:
            raise _err(what, "offer %d has %d algorithms (at most 3)" % (index + 1, algos))
        ah = esp_conf = esp_auth = ""
        for slot in range(algos):           # unused slots hold garbage on Win2000: never read
            alg, integrity, kind, _zero = _SLOT.unpack_from(slots, 20 * slot)
            if kind == 1:
                ah = _AH_NAMES.get(alg, "")
                if not ah:
                    raise _err(what, "offer %d: unknown AH algorithm %d" % (index + 1, alg))
            elif kind == 2:
                if alg not in _ESP_CONF_NAMES or integrity not in _ESP_AUTH_NAMES:
                    raise _err(what, "offer %d: unknown ESP algorithms %d/%d" % (index + 1, alg, integrity))
                esp_conf, esp_auth = _ESP_CONF_NAMES[alg], _ESP_AUTH_NAMES[integrity]
            else:
                raise _err(what, "offer %d: unknown offer type %d (1 = AH, 2 = ESP)" % (index + 1, kind))
        offers.append(QmOffer(ah, esp_conf, esp_auth, kb, secs))
    rd.end()
    return NegPolData(tuple(offers), qmpfs, soft)


# ----------------------------------------------------------------------------------- ipsecNFA

CONNTYPE_IDS = {"all": 0xFFFFFFFD, "lan": 0xFFFFFFFE, "dialup": 0xFFFFFFFF}    # fs 5.2 [S+C]
CONNTYPE_NAMES = {v: k for k, v in CONNTYPE_IDS.items()}
AUTH_IDS = {"psk": 1, "cert": 3, "kerberos": 5}                               # fs 5.2
AUTH_NAMES = {v: k for k, v in AUTH_IDS.items()}


@dataclass(frozen=True)
class NfaData:
    """What a rule's blob holds (fs 5.2): auth methods, interface type, tunnel, active flag.
    model.Rule has the same attribute names."""
    auth: Tuple[AuthMethod, ...] = ()
    conntype: str = "all"
    tunnel: str = ""
    active: bool = True
    interface_name: str = ""


def decode_nfa_blob(blob: bytes, what: str = "ipsecNFA") -> NfaData:
    """The optional Vista+ tail is read only to reach the trailer; its methods repeat the main list."""
    rd = _Reader(bytes(blob), what)
    rd.header(NFA_BLOB, "ipsecNFA")
    count = rd.u32("Auth-Method-Count")
    auth = []
    for index in range(count):
        kind = rd.u32("Auth-Type %d" % (index + 1))
        data = rd.raw(rd.u32("Auth-Length %d" % (index + 1)), "Auth data %d" % (index + 1))
        if kind not in AUTH_NAMES:
            raise _err(what, "auth method %d has unknown type %d (1 = psk, 3 = cert, 5 = kerberos)"
                       % (index + 1, kind))
        name = AUTH_NAMES[kind]
        auth.append(AuthMethod(name, "" if name == "kerberos" else _utf16(data)))
    iface = rd.u32("Interface-Type")
    if iface not in CONNTYPE_NAMES:
        raise _err(what, "unknown Interface-Type 0x%08X" % iface)
    iface_name = rd.string("Interface-Name")
    tunnel_raw = rd.raw(4, "Tunnel-Address")
    is_tunnel = rd.u32("Is-Tunnel") == 1
    active = rd.u32("Is-Active") == 1
    endpoint = rd.string("Tunnel-End-Point-Name")
    if rd.data[rd.pos:rd.pos + 16] == ALT_AUTH_ID1:           # fs 5.3, Vista+ only
        rd.pos += 16
        alt = rd.u32("Alt-Auth-Num-Methods-Count")
        for index in range(alt):
            rd.u32("Alt-Auth-Type %d" % (index + 1))
            rd.raw(rd.u32("Alt-Auth-Length %d" % (index + 1)), "Alt-Auth data %d" % (index + 1))
        if rd.raw(16, "Alt-Auth-Method-Id2") != ALT_AUTH_ID2:
            raise _err(what, "alternate-auth tail lacks its second marker")
        rd.u32("Zero1")                                       # observed 1; ignored (fs 5.3)
        rd.raw(4 * alt, "Alt-Auth-Method-Flags")
        if rd.data[rd.pos:rd.pos + 16] == ALT_IPV6_TUNNEL_ID:
            rd.pos += 16
            v6 = rd.raw(16, "IPv6 tunnel address")
            if is_tunnel and v6 != b"\x00" * 16:
                endpoint = str(ipaddress.IPv6Address(v6))
    rd.end()
    tunnel = ""
    if is_tunnel:
        tunnel = endpoint or socket.inet_ntoa(tunnel_raw)
    return NfaData(tuple(auth), CONNTYPE_NAMES[iface], tunnel, active, iface_name)


# -------------------------------------------------------------------------------- ipsecFilter

SPECIAL_SRC = {"DNS": 0x01, "WINS": 0x02, "DHCP": 0x03, "GATEWAY": 0x04}     # fs 5.5 [S]
SPECIAL_NAMES = {v: k for k, v in SPECIAL_SRC.items()}
V2_ANY, V2_SINGLE, V2_RANGE, V2_SUBNET, V2_ME = 0, 1, 2, 4, 8                  # fs 5.6 [S]
V2_SERVER = {"DNS": 0x10, "WINS": 0x20, "DHCP": 0x40, "GATEWAY": 0x80}
V2_SERVER_NAMES = {v: k for k, v in V2_SERVER.items()}

_ALL = b"\xff\xff\xff\xff"
_ZERO = b"\x00\x00\x00\x00"
_ADDR_CACHE: dict = {}


def _address_pair(pair: bytes) -> Address:
    """8 bytes, address then mask (fs 5.5): any = 0/0; 'me' = 0.0.0.0/255.255.255.255 ([?]
    inferred from ipsecpol's IP_ADDRESS_ME = 0 with IP_ADDRESS_MASK_NONE; no capture holds a
    'me' filter); otherwise a host (mask 255.255.255.255) or a subnet."""
    found = _ADDR_CACHE.get(pair)
    if found is None:
        addr, mask = pair[:4], pair[4:]
        if addr == _ZERO and mask == _ZERO:
            found = ANY
        elif addr == _ZERO and mask == _ALL:
            found = ME
        else:
            found = Address("ip", socket.inet_ntoa(addr), socket.inet_ntoa(mask))
        if len(_ADDR_CACHE) < 65536:
            _ADDR_CACHE[pair] = found
    return found


def _legacy_address(addr: bytes, mask: bytes) -> Address:
    return _address_pair(addr + mask)


def _read_filter_strings(data: bytes, pos: int, what: str, index: int):
    """Three length-prefixed strings (src DNS, dst DNS, description) -> (strings, new pos)."""
    if data[pos:pos + 18] == _EMPTY3:
        return ("", "", ""), pos + 18
    rd = _Reader(data, "%s filter %d" % (what, index + 1), pos)
    values = (rd.string("source DNS name"), rd.string("destination DNS name"), rd.string("description"))
    return values, rd.pos


# A legacy record whose three strings are empty and that names no server type: the common case,
# unpacked in bulk (the decoder must stay linear and quick: 10k filters well under 200 ms).
# Same layout as _FILTER_FIXED after the strings, with each address+mask read as one 8-byte key.
_FILTER_PLAIN = struct.Struct("<18sIHH8sI8s8s4sIHHBBH")


def _plain_records(data: bytes, pos: int, end: int):
    """All records in data[pos:end] if every one is plain, else None (the caller then walks them)."""
    cache = _ADDR_CACHE
    address = _address_pair
    make = Filter
    filters = []
    append = filters.append
    for (strings, g1, g2, g3, g4, mirrored, src, dst, _tun, proto, sport, dport, _is_tun, special,
         _opts) in _FILTER_PLAIN.iter_unpack(memoryview(data)[pos:end]):
        if special or strings != _EMPTY3:
            return None
        tail = g4.hex()
        append(make(cache.get(src) or address(src), cache.get(dst) or address(dst), proto, sport, dport,
                    mirrored == 1, "", "{%08x-%04x-%04x-%s-%s}" % (g1, g2, g3, tail[:4], tail[4:])))
    return filters


def _decode_legacy_records(data: bytes, pos: int, count: int, what: str):
    end = pos + _FILTER_PLAIN.size * count
    if end <= len(data):
        filters = _plain_records(data, pos, end)
        if filters is not None:
            return filters, end
    filters = []
    size = _FILTER_FIXED.size
    fixed = _FILTER_FIXED.unpack_from
    address = _legacy_address
    make = Filter
    for index in range(count):
        (src_dns, dst_dns, desc), pos = _read_filter_strings(data, pos, what, index)
        if pos + size > len(data):
            raise _err(what, "truncated in filter %d of %d (offset %d)" % (index + 1, count, pos))
        (g1, g2, g3, g4, mirrored, src, smask, dst, dmask, _tun, proto, sport, dport, _is_tun, special,
         _opts) = fixed(data, pos)
        pos += size
        src_addr = Address("dns", src_dns) if src_dns else address(src, smask)
        dst_addr = Address("dns", dst_dns) if dst_dns else address(dst, dmask)
        if special:                     # fs 5.5 [S]: server types; the other side is "me"
            name = SPECIAL_NAMES.get(special & 0x7F)
            if name is None:
                raise _err(what, "filter %d: unknown Special-Filter 0x%02X" % (index + 1, special))
            if special & 0x80:
                dst_addr = Address("server", name)
            else:
                src_addr = Address("server", name)
        tail = g4.hex()
        filters.append(make(src_addr, dst_addr, proto, sport, dport, mirrored == 1, desc,
                            "{%08x-%04x-%04x-%s-%s}" % (g1, g2, g3, tail[:4], tail[4:])))
    return filters, pos


def _v2_address(kind: int, version: int, addr: bytes, second: bytes, what: str) -> Address:
    if kind == V2_ANY:
        return ANY
    if kind == V2_ME:
        return ME
    if kind in V2_SERVER_NAMES:
        return Address("server", V2_SERVER_NAMES[kind])
    if version == 1:
        first, other = socket.inet_ntoa(addr[:4]), socket.inet_ntoa(second[:4])
    elif version == 2:
        first, other = str(ipaddress.IPv6Address(addr)), str(ipaddress.IPv6Address(second))
    else:
        raise _err(what, "unknown v2 address version %d" % version)
    if kind == V2_SINGLE:
        return Address("ip", first, "255.255.255.255" if version == 1 else "128")
    if kind == V2_RANGE:
        return Address("range", first, end=other)
    if kind == V2_SUBNET:
        return Address("ip", first, other if version == 1 else str(second[0]))
    raise _err(what, "unknown v2 address type 0x%X" % kind)


def _decode_v2_records(data: bytes, pos: int, count: int, what: str):
    """fs 5.6 [S only]: no capture confirms this layout."""
    filters = []
    for index in range(count):
        label = "%s v2 filter %d" % (what, index + 1)
        (src_dns, dst_dns, desc), pos = _read_filter_strings(data, pos, what + " v2", index)
        if pos + 124 > len(data):
            raise _err(what, "truncated in v2 filter %d of %d" % (index + 1, count))
        guid = data[pos:pos + 16]
        mirrored = _U32.unpack_from(data, pos + 16)[0]
        src = Address("dns", src_dns) if src_dns else _v2_address(*_V2_ADDR.unpack_from(data, pos + 20), what=label)
        dst = Address("dns", dst_dns) if dst_dns else _v2_address(*_V2_ADDR.unpack_from(data, pos + 60), what=label)
        _st, sport, _se = _V2_PORT.unpack_from(data, pos + 100)
        _dt, dport, _de = _V2_PORT.unpack_from(data, pos + 108)
        proto = _U32.unpack_from(data, pos + 116)[0]
        pos += 124
        filters.append(Filter(src, dst, proto, sport, dport, mirrored == 1, desc, bytes_to_guid(guid)))
    return filters, pos


def decode_filter_blob(blob: bytes, what: str = "ipsecFilter") -> Tuple[Filter, ...]:
    """All filters of one filter list (fs 5.5). When the optional v2 section (fs 5.6, spec only)
    holds one record per legacy record, the v2 records win: they carry what the legacy record
    cannot (ranges, IPv6, server types); otherwise its records are appended."""
    data = bytes(blob)
    rd = _Reader(data, what)
    rd.header(FILTER_BLOB, "ipsecFilter")
    count = rd.u32("Number-Of-Filters1")
    filters, pos = _decode_legacy_records(data, rd.pos, count, what)
    if data[pos:pos + 16] == FILTER_V2_SECTION:
        rd.pos = pos + 16
        rd.u32("Data-Length2")
        rd.u32("Number-Of-Filters11")
        count2 = rd.u32("Number-Of-Filters2")
        v2, pos = _decode_v2_records(data, rd.pos, count2, what)
        filters = v2 if count2 == count else filters + v2
    rd.pos = pos
    rd.end()
    return tuple(filters)


__all__ = [
    "NegPolData", "NfaData", "bytes_to_guid", "decode_policy_blob", "decode_negpol_blob", "decode_nfa_blob",
    "decode_filter_blob", "CONNTYPE_IDS", "AUTH_IDS",
]
