# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The binary `ipsecData` blobs of the static IPsec policy store, both ways.

Layouts follow [MS-GPIPSEC] 2.2.1.x as summarised (and corrected against the real captures in
tests/fixtures/registry/) in docs/policy-store.md; section numbers below ("fs 5.5") are that page's.

Decoders parse by counts and string lengths and never trust Data-Length (fs 3); they accept zero or
one trailing 0x00. Encoders take `flavor`: 'modern' copies Vista+ netsh output, 'legacy' copies
Windows 2000/XP/2003 (the two differ in the filter blob's Data-Length and trailer, the NFA's
optional alternate-auth tail, the default main-mode methods and the 64/8 words Windows 2000 writes
in main-mode methods and quick-mode algorithm slots; see encode_isakmp_blob).

Standard library only: this ships to controllers.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
import uuid
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from .model import ANY, ME, Address, AuthMethod, Filter, IPsecError, QmOffer

FLAVORS = ("modern", "legacy")

# Blob type GUIDs, as stored (mixed-endian GUID bytes), fs 3.
POLICY_BLOB = uuid.UUID("22202163-4f4c-11d1-863b-00a0248d3021").bytes_le
ISAKMP_BLOB = uuid.UUID("80dc20b8-2ec8-11d1-a89e-00a0248d3021").bytes_le
NFA_BLOB = uuid.UUID("11bbac00-498d-11d1-8639-00a0248d3021").bytes_le
NEGPOL_BLOB = uuid.UUID("80dc20b9-2ec8-11d1-a89e-00a0248d3021").bytes_le
FILTER_BLOB = uuid.UUID("80dc20b5-2ec8-11d1-a89e-00a0248d3021").bytes_le
FILTER_V2_SECTION = uuid.UUID("35fecd3d-ae29-4373-8a6a-c5d8fab2fb08").bytes_le   # [S] only

# NFA alternate-auth tail markers (fs 5.3).
ALT_AUTH_ID1 = b"\x01" * 16
ALT_AUTH_ID2 = b"\x01" * 15 + b"\x02"
ALT_IPV6_TUNNEL_ID = b"\x01" * 15 + b"\x03"

POLLING_DEFAULT_SECONDS = 10800         # fs 4.1: 0 in the blob means 10800 s
MM_LIFETIME_DEFAULT = 28800             # fs 4.2: Win10 netsh writes 28800

_U32 = struct.Struct("<I")
_EMPTY_STR = b"\x02\x00\x00\x00\x00\x00"
_EMPTY3 = _EMPTY_STR * 3
# Legacy filter record after its three strings (fs 5.5): guid, mirrored, src, srcmask, dst, dstmask,
# tunnel (network order -> read as raw 4-byte strings), protocol, ports (LE), is-tunnel, special, options.
_FILTER_FIXED = struct.Struct("<IHH8sI4s4s4s4s4sIHHBBH")   # GUID split as Data1..Data4
_GUID_PARTS = struct.Struct("<IHH8s")
_V2_ADDR = struct.Struct("<II16s16s")
_V2_PORT = struct.Struct("<IHH")


def _err(what: str, detail: str) -> IPsecError:
    return IPsecError("%s: %s" % (what, detail))


def guid_to_bytes(guid: str) -> bytes:
    """'{xxxxxxxx-...}' (any case, braces optional) -> the 16 stored bytes."""
    try:
        return uuid.UUID(guid.strip().strip("{}")).bytes_le
    except ValueError:
        raise IPsecError("invalid GUID %r; expected {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" % (guid,))


def bytes_to_guid(raw: bytes) -> str:
    """16 stored bytes -> '{xxxxxxxx-...}' in lower case, as Windows tools write it (fs 2.1)."""
    return "{%s}" % uuid.UUID(bytes_le=bytes(raw))


def new_guid() -> str:
    return "{%s}" % uuid.uuid4()


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


def _str(text: str) -> bytes:
    raw = (text + "\x00").encode("utf-16-le")
    return _U32.pack(len(raw)) + raw


def _check_flavor(flavor: str) -> None:
    if flavor not in FLAVORS:
        raise IPsecError("flavor: %r is not valid; expected one of %s" % (flavor, ", ".join(FLAVORS)))


def _framed(type_guid: bytes, payload: bytes) -> bytes:
    """Data-Length = payload size, then the 0x00 trailer (policy, ISAKMP, NegPol: fs 3)."""
    return type_guid + _U32.pack(len(payload)) + payload + b"\x00"


# --------------------------------------------------------------------------------- ipsecPolicy

def decode_policy_blob(blob: bytes, what: str = "ipsecPolicy") -> int:
    """-> polling interval in minutes (fs 4.1: stored in seconds, 0 meaning 10800)."""
    rd = _Reader(bytes(blob), what)
    rd.header(POLICY_BLOB, "ipsecPolicy")
    seconds = rd.u32("Polling-Interval") or POLLING_DEFAULT_SECONDS
    rd.end()
    return seconds // 60


def encode_policy_blob(polling_minutes: int, flavor: str = "modern") -> bytes:
    """25 bytes on every Windows (fs 4.1, [S+C])."""
    _check_flavor(flavor)
    seconds = int(polling_minutes) * 60
    if not 0 <= seconds <= 0xFFFFFFFF:
        raise IPsecError("polling_interval: %r minutes is out of range" % (polling_minutes,))
    return _framed(POLICY_BLOB, _U32.pack(seconds))


# --------------------------------------------------------------------------- ipsecISAKMPPolicy

MM_CIPHERS = {1: "DES", 3: "3DES"}          # fs 4.2 [C]: 3DES is 3 (the spec also lists 2)
MM_HASHES = {0: "None", 1: "MD5", 2: "SHA1"}
# fs 4.2 Random-Function 1..4 override cipher/hash and mean DH group 14 ("group 3" in netsh).
_RANDOM_FUNCTION = {1: ("DES", "MD5"), 2: ("DES", "SHA1"), 3: ("3DES", "MD5"), 4: ("3DES", "SHA1")}


@dataclass(frozen=True)
class MmMethod:
    """One main-mode security method, as netsh `mmsecmethods` spells it: cipher-hash-group."""
    cipher: str = "3DES"
    hash: str = "SHA1"
    group: int = 2                  # 1 = DH768, 2 = DH1024, 3 = DH2048
    lifetime_s: int = MM_LIFETIME_DEFAULT
    lifetime_kb: int = 0
    qm_limit: int = 0

    def __str__(self) -> str:
        return "%s-%s-%d" % (self.cipher, self.hash, self.group)


@dataclass(frozen=True)
class IsakmpData:
    """The main-mode settings of one policy (fs 4.2)."""
    methods: Tuple[MmMethod, ...] = ()
    mmpfs: bool = False
    options: int = 0
    qm_limit: int = 0
    lifetime_s: int = MM_LIFETIME_DEFAULT


# Windows' default main-mode methods for a new policy. Taken from the real Win10 capture in
# tests/fixtures/registry (GSecurity, ipsecISAKMPPolicy{e627a7fc...}): one method, 3DES-SHA1-2,
# 28800 s. [I] netsh's documented default list may be longer; no capture shows it.
DEFAULT_MM_METHODS = (MmMethod("3DES", "SHA1", 2),)
DEFAULT_ISAKMP = IsakmpData(methods=DEFAULT_MM_METHODS)
# What Windows 2000 wrote for a new policy (tests/fixtures/registry/vpnease_win2000_l2tp_template.reg,
# its ipsecISAKMPPolicy): four methods, the policy's own MM-Lifetime stored as 0 (read as 28800; the
# methods carry 28800 s).
# The same four are netsh's documented default for Windows Server 2003 ("Netsh commands for Internet
# Protocol security", mmsecmethods: 3DES-SHA1-2 3DES-MD5-2 DES-SHA1-1 DES-MD5-1).
DEFAULT_ISAKMP_LEGACY = IsakmpData(methods=(MmMethod("3DES", "SHA1", 2), MmMethod("3DES", "MD5", 2),
                                            MmMethod("DES", "SHA1", 1), MmMethod("DES", "MD5", 1)),
                                   lifetime_s=0)
# The words Windows 2000 writes after a main-mode method's cipher and hash ids and after a used
# quick-mode algorithm slot's ids: 64 and 8 (key length and rounds, by their place in [MS-GPIPSEC]
# 2.2.1.2.1 / 2.2.1.4.1, which call them zero or reserved); Windows 10 writes zeros [C].
_LEGACY_KEY_BITS, _LEGACY_ROUNDS = 64, 8


def default_isakmp(flavor: str) -> IsakmpData:
    """The main-mode settings a new policy gets from the tools of that flavor's Windows."""
    _check_flavor(flavor)
    return DEFAULT_ISAKMP_LEGACY if flavor == "legacy" else DEFAULT_ISAKMP


_MM_METHOD = struct.Struct("<BBHIIIIII8sB7sIIIII")


def decode_isakmp_blob(blob: bytes, what: str = "ipsecISAKMPPolicy") -> IsakmpData:
    rd = _Reader(bytes(blob), what)
    rd.header(ISAKMP_BLOB, "ipsecISAKMPPolicy")
    rd.raw(16, "ISAKMP-Policy-Instance GUID")       # zero on Win10 netsh; ignored (fs 4.2)
    rd.u32("Zero1")
    mmpfs = rd.u32("Master-PFS-Required") == 1
    options = rd.u32("ISAKMP-Options")
    rd.raw(4, "New-DH")
    qm_limit = rd.u32("QM-Limit")
    lifetime = rd.u32("MM-Lifetime") or MM_LIFETIME_DEFAULT
    rd.raw(20, "Zero2")
    count = rd.u32("Security-Method-Count")
    rd.need(64 * count, "%d security methods" % count)
    methods = []
    for _ in range(count):
        (_maj, _min, _z3, enc, _enc_hi, _z4, hsh, _hsh_hi, _z5, _z6, rf, _z7, group, mqm, kb, secs,
         _pfs) = _MM_METHOD.unpack_from(rd.data, rd.pos)
        rd.pos += 64
        if rf in _RANDOM_FUNCTION:
            cipher, hash_name = _RANDOM_FUNCTION[rf]
            group = 3
        else:
            cipher = MM_CIPHERS.get(enc, "None" if enc == 0 else str(enc))
            hash_name = MM_HASHES.get(hsh, str(hsh))
            group = 3 if group == 0x10000001 else group
        methods.append(MmMethod(cipher, hash_name, group, secs, kb, mqm))
    rd.end()
    return IsakmpData(tuple(methods), mmpfs, options, qm_limit, lifetime)


def encode_isakmp_blob(data: IsakmpData = DEFAULT_ISAKMP, flavor: str = "modern") -> bytes:
    """85 + 64*n bytes (fs 4.2). The instance GUID is written as zeros, as Win10 netsh does
    ([I] Windows 2000 wrote a GUID there; readers ignore it)."""
    _check_flavor(flavor)
    key_bits, rounds = (_LEGACY_KEY_BITS, _LEGACY_ROUNDS) if flavor == "legacy" else (0, 0)
    cipher_ids = {v: k for k, v in MM_CIPHERS.items()}
    hash_ids = {v: k for k, v in MM_HASHES.items()}
    rf_ids = {v: k for k, v in _RANDOM_FUNCTION.items()}
    parts = [b"\x00" * 16, struct.pack("<III", 0, int(data.mmpfs), data.options), b"\x00" * 4,
             struct.pack("<II", data.qm_limit, data.lifetime_s), b"\x00" * 20,
             _U32.pack(len(data.methods))]
    for m in data.methods:
        if m.cipher not in cipher_ids or m.hash not in hash_ids or m.group not in (1, 2, 3):
            raise IPsecError("mmsecmethods: %r is not valid; expected DES|3DES-MD5|SHA1-1|2|3" % str(m))
        rf = rf_ids.get((m.cipher, m.hash), 0) if m.group == 3 else 0
        # DH2048: Random-Function 1..4 where the cipher/hash pair has one, and the spec's group
        # 14 id 0x10000001 in the group field [S]; which of the two Windows itself writes is [?].
        group = 0x10000001 if m.group == 3 else m.group
        parts.append(_MM_METHOD.pack(0, 0, 0, cipher_ids[m.cipher], key_bits, rounds, hash_ids[m.hash], key_bits, 0,
                                     b"\x00" * 8, rf, b"\x00" * 7, group, m.qm_limit, m.lifetime_kb,
                                     m.lifetime_s, 0))
    return _framed(ISAKMP_BLOB, b"".join(parts))


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


def encode_negpol_blob(offers: Sequence[QmOffer] = (), qmpfs: bool = False, soft: bool = False,
                       flavor: str = "modern") -> bytes:
    """25 + 80*n bytes (fs 5.4). Block and permit actions have no offers. AH is written before
    ESP when an offer has both ([I] order not seen in a capture; the decoder takes either)."""
    _check_flavor(flavor)
    words = struct.pack("<II", _LEGACY_KEY_BITS, _LEGACY_ROUNDS) if flavor == "legacy" else b"\x00" * 8
    parts = []
    all_offers = [(o, True) for o in offers] + ([(None, False)] if soft else [])
    for offer, real in all_offers:
        slots = []
        if real:
            if offer.ah:
                if offer.ah not in _AH_IDS:
                    raise IPsecError("qmsecmethods: AH %r is not valid; expected MD5 or SHA1" % offer.ah)
                slots.append(_SLOT.pack(_AH_IDS[offer.ah], 0, 1, words))
            if offer.esp_conf or offer.esp_auth:
                conf, auth = offer.esp_conf or "None", offer.esp_auth or "None"
                if conf not in _ESP_CONF_IDS or auth not in _ESP_AUTH_IDS:
                    raise IPsecError("qmsecmethods: ESP[%s,%s] is not valid; expected "
                                     "ESP[DES|3DES|None,MD5|SHA1|None]" % (conf, auth))
                slots.append(_SLOT.pack(_ESP_CONF_IDS[conf], _ESP_AUTH_IDS[auth], 2, words))
            if not slots:
                raise IPsecError("qmsecmethods: an offer needs AH or ESP; got %r" % (offer,))
        secs, kb = (offer.lifetime_s, offer.lifetime_kb) if real else (0, 0)
        parts.append(_OFFER.pack(secs, kb, 0, int(qmpfs), len(slots), b"".join(slots).ljust(60, b"\x00")))
    return _framed(NEGPOL_BLOB, _U32.pack(len(parts)) + b"".join(parts))


# ----------------------------------------------------------------------------------- ipsecNFA

CONNTYPE_IDS = {"all": 0xFFFFFFFD, "lan": 0xFFFFFFFE, "dialup": 0xFFFFFFFF}    # fs 5.2 [S+C]
CONNTYPE_NAMES = {v: k for k, v in CONNTYPE_IDS.items()}
AUTH_IDS = {"psk": 1, "cert": 3, "kerberos": 5}                               # fs 5.2
AUTH_NAMES = {v: k for k, v in AUTH_IDS.items()}


@dataclass(frozen=True)
class NfaData:
    """What a rule's blob holds (fs 5.2): auth methods, interface type, tunnel, active flag.
    model.Rule has the same attribute names, so a Rule can be passed to encode_nfa_blob."""
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


def _tunnel_fields(tunnel: str):
    """-> (IPv4 bytes, end-point name, IPv6 bytes or None)."""
    if not tunnel:
        return b"\x00" * 4, "", None
    try:
        addr = ipaddress.ip_address(tunnel)
    except ValueError:
        return b"\x00" * 4, tunnel, None     # a DNS name: kept in Tunnel-End-Point-Name [?]
    if addr.version == 4:
        return addr.packed, "", None
    return b"\x00" * 4, "", addr.packed      # fs 5.3: IPv6 tunnel in the optional tail [S]


def encode_nfa_blob(rule, flavor: str = "modern") -> bytes:
    """`rule`: an NfaData or a model.Rule. A pre-shared key is written in clear (fs 5.2): it is a
    secret; nothing here logs it. The Vista+ tail (fs 5.3) is written for 'modern' only."""
    _check_flavor(flavor)
    if rule.conntype not in CONNTYPE_IDS:
        raise IPsecError("conntype: %r is not valid; expected all, lan or dialup" % (rule.conntype,))
    methods = []
    for method in rule.auth:
        if method.kind not in AUTH_IDS:
            raise IPsecError("auth: %r is not valid; expected kerberos, psk or cert" % (method.kind,))
        data = b"\x00\x00" if method.kind == "kerberos" else (method.value + "\x00").encode("utf-16-le")
        methods.append((AUTH_IDS[method.kind], data))
    v4, endpoint, v6 = _tunnel_fields(rule.tunnel)
    counted = b"".join([_U32.pack(len(methods))]
                       + [struct.pack("<II", kind, len(data)) + data for kind, data in methods]
                       + [_U32.pack(CONNTYPE_IDS[rule.conntype]), _str(getattr(rule, "interface_name", "")),
                          v4, struct.pack("<II", int(bool(rule.tunnel)), int(rule.active)), _str(endpoint)])
    tail = b""
    if flavor == "modern" or v6 is not None:
        alt = [struct.pack("<II", kind, 0 if kind == 5 else len(data)) + (b"" if kind == 5 else data)
               for kind, data in methods]
        tail = b"".join([ALT_AUTH_ID1, _U32.pack(len(methods))] + alt
                        + [ALT_AUTH_ID2, _U32.pack(1), b"\x00" * (4 * len(methods))])
        if v6 is not None:
            tail += ALT_IPV6_TUNNEL_ID + v6
    return NFA_BLOB + _U32.pack(len(counted)) + counted + tail + b"\x00"


# -------------------------------------------------------------------------------- ipsecFilter

SPECIAL_SRC = {"DNS": 0x01, "WINS": 0x02, "DHCP": 0x03, "GATEWAY": 0x04}     # fs 5.5 [S]
SPECIAL_NAMES = {v: k for k, v in SPECIAL_SRC.items()}
V2_ANY, V2_SINGLE, V2_RANGE, V2_SUBNET, V2_ME = 0, 1, 2, 4, 8                  # fs 5.6 [S]
V2_SERVER = {"DNS": 0x10, "WINS": 0x20, "DHCP": 0x40, "GATEWAY": 0x80}
V2_SERVER_NAMES = {v: k for k, v in V2_SERVER.items()}
V2_USE_RANGES = 0x8

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


def _needs_v2(side: Address) -> bool:
    if side.kind in ("range", "server"):
        return True
    return side.kind == "ip" and ":" in side.value


def _mask_bytes(addr: Address, what: str) -> bytes:
    mask = addr.mask or "255.255.255.255"
    if mask.isdigit():
        return ipaddress.IPv4Network("0.0.0.0/%s" % mask).netmask.packed
    try:
        return socket.inet_aton(mask) if mask.count(".") == 3 else _bad(what, mask)
    except OSError:
        return _bad(what, mask)


def _bad(what, value):
    raise IPsecError("%s: %r is not valid; expected an IPv4 address or dotted mask" % (what, value))


def _legacy_side(side: Address, what: str):
    """-> (address, mask, dns name, special byte) for the legacy record."""
    if side.kind == "any":
        return _ZERO, _ZERO, "", 0
    if side.kind == "me":
        return _ZERO, _ALL, "", 0                    # [?] fs 5.5, see _legacy_address
    if side.kind == "dns":
        # Windows resolves the name when the filter is added and stores the address too; we
        # cannot resolve here, so the address part is left as a host mask on 0.0.0.0 [I].
        return _ZERO, _ALL, side.value, 0
    if side.kind == "server":
        if side.value.upper() not in SPECIAL_SRC:
            raise IPsecError("%s: server type %r is not valid; expected DNS, WINS, DHCP or GATEWAY"
                             % (what, side.value))
        return _ZERO, _ALL, "", SPECIAL_SRC[side.value.upper()]
    if side.kind == "range":
        try:
            lo, hi = ipaddress.ip_address(side.value), ipaddress.ip_address(side.end)
        except ValueError:
            raise IPsecError("%s: range %r-%r is not valid; expected two IP addresses of one family"
                             % (what, side.value, side.end))
        if lo.version == 4:                          # [I] smallest covering subnet; v2 carries the range
            net = ipaddress.IPv4Network(lo)
            while hi not in net:
                net = net.supernet()
            return net.network_address.packed, net.netmask.packed, "", 0
        return _ZERO, _ALL, "", 0                    # [I] IPv6 lives in the v2 section only;
    if side.kind == "ip":                            # 2000/XP read no v2 and no IPv6 anyway
        if ":" in side.value:
            return _ZERO, _ALL, "", 0
        try:
            return socket.inet_aton(side.value), _mask_bytes(side, what + " mask"), "", 0
        except OSError:
            _bad(what, side.value)
    raise IPsecError("%s: address kind %r is not valid; expected any, me, ip, range, dns or server"
                     % (what, side.kind))


def _v2_side(side: Address) -> bytes:
    """fs 5.6 [S only]: type, version, 16-byte address, 16-byte secondary."""
    if side.kind == "any":
        return _V2_ADDR.pack(V2_ANY, 1, b"", b"")
    if side.kind == "me":
        return _V2_ADDR.pack(V2_ME, 3, b"", b"")
    if side.kind == "server":
        return _V2_ADDR.pack(V2_SERVER[side.value.upper()], 3, b"", b"")
    if side.kind == "dns":
        return _V2_ADDR.pack(V2_SINGLE, 1, b"", b"")     # the name is in the record's string [I]
    first = ipaddress.ip_address(side.value)
    version = 1 if first.version == 4 else 2
    if side.kind == "range":
        return _V2_ADDR.pack(V2_RANGE, version, first.packed, ipaddress.ip_address(side.end).packed)
    if version == 1:
        mask = _mask_bytes(side, "mask")
        kind = V2_SINGLE if mask == _ALL else V2_SUBNET
        return _V2_ADDR.pack(kind, 1, first.packed, b"" if kind == V2_SINGLE else mask)
    prefix = int(side.mask or 128)
    if prefix == 128:
        return _V2_ADDR.pack(V2_SINGLE, 2, first.packed, b"")
    return _V2_ADDR.pack(V2_SUBNET, 2, first.packed, bytes([prefix]))


def _port_v2(port: int) -> bytes:
    return _V2_PORT.pack(1 if port else 0, port, port)


def encode_filter_blob(filters: Sequence[Filter], flavor: str = "modern",
                       guid_factory: Optional[Callable[[], str]] = None) -> bytes:
    """One filter list's blob (fs 5.5). 'modern': Data-Length = size of the legacy records, no
    trailer ([C] Vista+); 'legacy': Data-Length = everything after it but the 0x00 trailer ([S+C]).
    Filters with ranges, IPv6 or server types also get the v2 section (fs 5.6, spec only, never
    seen in a capture), one v2 record per filter, Number-Of-Filters11 = the legacy count [?]."""
    _check_flavor(flavor)
    make_guid = guid_factory or new_guid
    records, v2_records = [], []
    needs_v2 = any(_needs_v2(f.src) or _needs_v2(f.dst) for f in filters)
    for index, flt in enumerate(filters):
        label = "filter %d" % (index + 1)
        src, smask, src_dns, sspecial = _legacy_side(flt.src, label + " src")
        dst, dmask, dst_dns, dspecial = _legacy_side(flt.dst, label + " dst")
        special = sspecial or (dspecial | 0x80 if dspecial else 0)
        for name, value, top in (("protocol", flt.protocol, 255), ("src_port", flt.src_port, 65535),
                                 ("dst_port", flt.dst_port, 65535)):
            if not isinstance(value, int) or not 0 <= value <= top:
                raise IPsecError("%s %s: %r is not valid; expected 0-%d" % (label, name, value, top))
        strings = _str(src_dns) + _str(dst_dns) + _str(flt.description)
        guid = guid_to_bytes(flt.guid or make_guid())
        records.append(strings + _FILTER_FIXED.pack(*_GUID_PARTS.unpack(guid), int(flt.mirrored), src, smask,
                                                    dst, dmask, _ZERO, flt.protocol, flt.src_port, flt.dst_port,
                                                    0, special, 0))
        if needs_v2:
            try:
                sides = _v2_side(flt.src) + _v2_side(flt.dst)
            except ValueError as exc:
                raise IPsecError("%s: %s" % (label, exc))
            v2_records.append(strings + guid + _U32.pack(int(flt.mirrored)) + sides + _port_v2(flt.src_port)
                              + _port_v2(flt.dst_port) + struct.pack("<II", flt.protocol, V2_USE_RANGES))
    body = _U32.pack(len(records)) + b"".join(records)
    if v2_records:
        v2_body = b"".join(v2_records)
        body += (FILTER_V2_SECTION + _U32.pack(len(v2_body))
                 + struct.pack("<II", len(records), len(v2_records)) + v2_body)
    if flavor == "modern":
        return FILTER_BLOB + _U32.pack(sum(len(r) for r in records)) + body
    return FILTER_BLOB + _U32.pack(len(body)) + body + b"\x00"


__all__ = [
    "FLAVORS", "MmMethod", "IsakmpData", "NegPolData", "NfaData", "DEFAULT_MM_METHODS", "DEFAULT_ISAKMP", "DEFAULT_ISAKMP_LEGACY", "default_isakmp",
    "guid_to_bytes", "bytes_to_guid", "new_guid",
    "decode_policy_blob", "encode_policy_blob", "decode_isakmp_blob", "encode_isakmp_blob",
    "decode_negpol_blob", "encode_negpol_blob", "decode_nfa_blob", "encode_nfa_blob",
    "decode_filter_blob", "encode_filter_blob", "CONNTYPE_IDS", "AUTH_IDS",
]
