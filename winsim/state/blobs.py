"""winsim's own reader and writer of the `ipsecData` blobs of [MS-GPIPSEC] 2.2.1.

Written from the public spec ([MS-GPIPSEC] 2.2.1.1.1 ipsecPolicy, 2.2.1.2.1 ipsecISAKMPPolicy,
2.2.1.3.1 ipsecNFA, 2.2.1.4.1 ipsecNegotiationPolicy, 2.2.1.5.1 ipsecFilter) and from the real
captures under tests/fixtures/registry/ (`gsecurity_win10_local_store.reg`: a Windows 10 store
written by netsh/MMC; `vpnease_win2000_l2tp_template.reg`: Windows 2000 blobs), not from the
collection's codec: winsim is what the engine is checked against, so it must not share its ideas.

Each blob is: type GUID (16 bytes, Windows mixed-endian), u32 Data-Length, payload, and (mostly) one
trailing 0x00. All integers are little-endian, IPv4 addresses and masks are in network order, and
strings are u32 byte length + UTF-16LE with its NUL ([MS-GPIPSEC] 2.2.1.3.1, 2.2.1.5.1).

The dataclasses keep every field a blob holds, unknown ones included, so that reading a real blob
and writing it again gives the same bytes (tests/unit/winsim/state/test_independent_blobs.py). The
writers take a `flavor`: 'modern' (Vista and later, as the Windows 10 capture) or 'legacy'
(2000/XP/2003, as the Windows 2000 capture); where the two differ it is said below.
"""
import struct
import uuid
from dataclasses import dataclass
from typing import Optional, Tuple

FLAVORS = ("modern", "legacy")

# Blob type GUIDs (bytes 0..15 of every blob; same in both captures).
POLICY_TYPE = "{22202163-4f4c-11d1-863b-00a0248d3021}"
ISAKMP_TYPE = "{80dc20b8-2ec8-11d1-a89e-00a0248d3021}"
NFA_TYPE = "{11bbac00-498d-11d1-8639-00a0248d3021}"
NEGPOL_TYPE = "{80dc20b9-2ec8-11d1-a89e-00a0248d3021}"
FILTER_TYPE = "{80dc20b5-2ec8-11d1-a89e-00a0248d3021}"
FILTER_V2_TYPE = "{35fecd3d-ae29-4373-8a6a-c5d8fab2fb08}"    # [MS-GPIPSEC] 2.2.1.5.1, in no capture

# ipsecNFA authentication types ([MS-GPIPSEC] 2.2.1.3.1; 1 and 5 are in the captures).
AUTH_PSK, AUTH_CERT, AUTH_KERBEROS = 1, 3, 5
# ipsecNFA Interface-Type ([MS-GPIPSEC] 2.2.1.3.1; 0xFFFFFFFD in both captures).
IF_ALL, IF_LAN, IF_DIALUP = 0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF
# Alternate-authentication section markers of the Vista+ NFA tail (Windows 10 capture).
ALT_AUTH_ID1 = b"\x01" * 16
ALT_AUTH_ID2 = b"\x01" * 15 + b"\x02"
# Quick-mode algorithm offer types ([MS-GPIPSEC] 2.2.1.4.1).
OFFER_AH, OFFER_ESP = 1, 2


class BlobError(ValueError):
    """A blob that does not have the layout of its class: winsim refuses it rather than guess."""


def guid_bytes(text: str) -> bytes:
    return uuid.UUID(text.strip("{}")).bytes_le


def guid_text(raw: bytes) -> str:
    return "{%s}" % uuid.UUID(bytes_le=bytes(raw))


def ip_bytes(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    if len(parts) != 4 or not all(0 <= p <= 255 for p in parts):
        raise BlobError("not an IPv4 address: %r" % dotted)
    return bytes(parts)


def ip_text(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def wstring(text: str) -> bytes:
    """A length-prefixed UTF-16LE string with its NUL ("" is `02 00 00 00 00 00`, both captures)."""
    data = (text + "\0").encode("utf-16-le")
    return struct.pack("<I", len(data)) + data


class _Reader:
    def __init__(self, blob: bytes, type_guid: str, what: str):
        self.blob, self.pos, self.what = bytes(blob), 0, what
        if len(self.blob) < 20 or guid_text(self.blob[:16]) != type_guid:
            raise BlobError("%s: not an %s blob (type GUID %s)" % (what, what, guid_text(self.blob[:16])
                                                                  if len(self.blob) >= 16 else "missing"))
        self.pos = 16
        self.data_length = self.u32()

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.blob):
            raise BlobError("%s: blob ends at byte %d, %d more expected" % (self.what, len(self.blob), n))
        raw = self.blob[self.pos:self.pos + n]
        self.pos += n
        return raw

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u8(self) -> int:
        return self.take(1)[0]

    def wstring(self) -> str:
        raw = self.take(self.u32())
        text = raw.decode("utf-16-le")
        return text[:-1] if text.endswith("\0") else text

    def rest(self) -> bytes:
        return self.blob[self.pos:]

    def trailer(self) -> bool:
        """True when one 0x00 byte ends the blob, False when nothing is left; anything else is refused."""
        left = self.rest()
        if left == b"":
            return False
        if left == b"\x00":
            self.pos += 1
            return True
        raise BlobError("%s: %d unexpected bytes at the end" % (self.what, len(left)))


def _frame(type_guid: str, data_length: int, payload: bytes, trailer: bool) -> bytes:
    return guid_bytes(type_guid) + struct.pack("<I", data_length) + payload + (b"\x00" if trailer else b"")


# -- ipsecPolicy ([MS-GPIPSEC] 2.2.1.1.1) -------------------------------------------------------------

@dataclass(frozen=True)
class PolicyBlob:
    polling_seconds: int = 10800     # both captures: 0x2a30 = 10800 s (netsh's default 180 minutes)


def write_policy(blob: PolicyBlob, flavor: str = "modern") -> bytes:
    """25 bytes in both captures: Data-Length 4, the polling interval, the spec's unused byte."""
    return _frame(POLICY_TYPE, 4, struct.pack("<I", blob.polling_seconds), True)


def read_policy(raw: bytes) -> PolicyBlob:
    r = _Reader(raw, POLICY_TYPE, "ipsecPolicy")
    blob = PolicyBlob(r.u32())
    r.trailer()
    return blob


# -- ipsecISAKMPPolicy ([MS-GPIPSEC] 2.2.1.2.1) -------------------------------------------------------

@dataclass(frozen=True)
class MmMethod:
    """One main-mode security method, 64 bytes. `cipher` 1 = DES, 3 = 3DES and `hash` 1 = MD5,
    2 = SHA1 as the captures store them; `key_bits`/`rounds`/`hash_bits` are 64/8/64 in the
    Windows 2000 capture and 0 in the Windows 10 one [I: their meaning]; `zero7` holds 7 bytes the
    spec calls zero, which are not zero in the Windows 2000 capture."""
    cipher: int
    hash: int
    group: int
    key_bits: int = 0
    rounds: int = 0
    hash_bits: int = 0
    random_function: int = 0
    zero7: bytes = bytes(7)
    qm_limit: int = 0
    lifetime_kb: int = 0
    lifetime_s: int = 28800
    pfs_identity: int = 0


_MM_METHOD = struct.Struct("<BBHIIIIII8sB7sIIIII")


@dataclass(frozen=True)
class IsakmpBlob:
    instance: str = "{00000000-0000-0000-0000-000000000000}"   # Windows 10 capture: all zeros
    master_pfs: int = 0
    options: int = 0
    new_dh: bytes = bytes(4)
    qm_limit: int = 0
    mm_lifetime: int = 28800          # Windows 10 capture: 28800; Windows 2000 capture: 0
    methods: Tuple[MmMethod, ...] = ()


def write_isakmp(blob: IsakmpBlob, flavor: str = "modern") -> bytes:
    payload = (guid_bytes(blob.instance) + struct.pack("<III", 0, blob.master_pfs, blob.options) + blob.new_dh
               + struct.pack("<II", blob.qm_limit, blob.mm_lifetime) + bytes(20)
               + struct.pack("<I", len(blob.methods)))
    for m in blob.methods:
        payload += _MM_METHOD.pack(0, 0, 0, m.cipher, m.key_bits, m.rounds, m.hash, m.hash_bits, 0, bytes(8),
                                   m.random_function, m.zero7, m.group, m.qm_limit, m.lifetime_kb,
                                   m.lifetime_s, m.pfs_identity)
    return _frame(ISAKMP_TYPE, len(payload), payload, True)


def read_isakmp(raw: bytes) -> IsakmpBlob:
    r = _Reader(raw, ISAKMP_TYPE, "ipsecISAKMPPolicy")
    instance = guid_text(r.take(16))
    _zero1, master_pfs, options = r.u32(), r.u32(), r.u32()
    new_dh = r.take(4)
    qm_limit, mm_lifetime = r.u32(), r.u32()
    r.take(20)
    methods = []
    for _ in range(r.u32()):
        (_maj, _min, _z3, cipher, key_bits, rounds, hash_alg, hash_bits, _z5, _z6, rf, zero7, group, qm, kb, secs,
         pfs) = _MM_METHOD.unpack(r.take(_MM_METHOD.size))
        methods.append(MmMethod(cipher, hash_alg, group, key_bits, rounds, hash_bits, rf, zero7, qm, kb, secs, pfs))
    r.trailer()
    return IsakmpBlob(instance, master_pfs, options, new_dh, qm_limit, mm_lifetime, tuple(methods))


# -- ipsecNFA ([MS-GPIPSEC] 2.2.1.3.1) ----------------------------------------------------------------

@dataclass(frozen=True)
class NfaAuth:
    """One authentication method. `data` is what the blob holds: the pre-shared key or the CA name
    as UTF-16LE with its NUL, `00 00` for Kerberos (both captures)."""
    kind: int
    data: bytes = b"\x00\x00"

    @classmethod
    def text(cls, kind: int, value: str) -> "NfaAuth":
        return cls(kind, (value + "\0").encode("utf-16-le"))

    @property
    def value(self) -> str:
        text = self.data.decode("utf-16-le")
        return text[:-1] if text.endswith("\0") else text


@dataclass(frozen=True)
class NfaBlob:
    auth: Tuple[NfaAuth, ...]
    interface_type: int = IF_ALL
    interface_name: str = ""
    tunnel_address: str = "0.0.0.0"
    is_tunnel: int = 0
    is_active: int = 1
    tunnel_endpoint_name: str = ""
    # The alternate-authentication tail Windows 10 writes after Tunnel-End-Point-Name, outside
    # Data-Length; the Windows 2000 blobs have none. None = no tail.
    alt_auth: Optional[Tuple[Tuple[int, bytes], ...]] = None
    alt_count2: int = 1               # the spec's "Zero1" after the second marker: 1 in the capture [I]
    alt_flags: Tuple[int, ...] = ()


def write_nfa(blob: NfaBlob, flavor: str = "modern") -> bytes:
    counted = struct.pack("<I", len(blob.auth))
    for a in blob.auth:
        counted += struct.pack("<II", a.kind, len(a.data)) + a.data
    counted += (struct.pack("<I", blob.interface_type) + wstring(blob.interface_name) + ip_bytes(blob.tunnel_address)
                + struct.pack("<II", blob.is_tunnel, blob.is_active) + wstring(blob.tunnel_endpoint_name))
    tail = b""
    if blob.alt_auth is not None:
        tail = ALT_AUTH_ID1 + struct.pack("<I", len(blob.alt_auth))
        for kind, data in blob.alt_auth:
            tail += struct.pack("<II", kind, len(data)) + data
        tail += ALT_AUTH_ID2 + struct.pack("<I", blob.alt_count2)
        tail += b"".join(struct.pack("<I", f) for f in blob.alt_flags)
    return _frame(NFA_TYPE, len(counted), counted + tail, True)


def read_nfa(raw: bytes) -> NfaBlob:
    r = _Reader(raw, NFA_TYPE, "ipsecNFA")
    auth = []
    for _ in range(r.u32()):
        kind, length = r.u32(), r.u32()
        auth.append(NfaAuth(kind, r.take(length)))
    interface_type = r.u32()
    interface_name = r.wstring()
    tunnel = ip_text(r.take(4))
    is_tunnel, is_active = r.u32(), r.u32()
    endpoint = r.wstring()
    alt, count2, flags = None, 1, ()
    if r.rest()[:16] == ALT_AUTH_ID1:
        r.take(16)
        alt = []
        for _ in range(r.u32()):
            kind, length = r.u32(), r.u32()
            alt.append((kind, r.take(length)))
        alt = tuple(alt)
        if r.take(16) != ALT_AUTH_ID2:
            raise BlobError("ipsecNFA: the second alternate-authentication marker is missing")
        count2 = r.u32()
        flags = tuple(r.u32() for _ in alt)
    r.trailer()
    return NfaBlob(tuple(auth), interface_type, interface_name, tunnel, is_tunnel, is_active, endpoint, alt,
                   count2, flags)


# -- ipsecNegotiationPolicy ([MS-GPIPSEC] 2.2.1.4.1) --------------------------------------------------

@dataclass(frozen=True)
class Algorithm:
    """One 20-byte algorithm slot. `ident`: AH 1 = MD5, 2 = SHA1; ESP cipher 1 = DES, 3 = 3DES
    (Windows 2000 capture's default offers 3DES/SHA1, 3DES/MD5, DES/SHA1, DES/MD5 store 3, 3, 1, 1;
    the spec's table says 2 = DES). `integrity`: 0 none, 1 MD5, 2 SHA1. `extra`: 8 bytes the spec
    calls zero, `40 00 00 00 08 00 00 00` in the Windows 2000 capture [I]."""
    ident: int = 0
    integrity: int = 0
    kind: int = 0
    extra: bytes = bytes(8)


_ALGORITHM = struct.Struct("<III8s")
_OFFER_HEAD = struct.Struct("<IIIII")


@dataclass(frozen=True)
class Offer:
    """One 80-byte security offer: lifetimes (0 = default), options, PFS, the count of meaningful
    slots, and all three slots as stored (Windows 2000 leaves garbage in the unused ones)."""
    lifetime_s: int = 0
    lifetime_kb: int = 0
    options: int = 0
    pfs: int = 0
    count: int = 0
    slots: Tuple[Algorithm, ...] = (Algorithm(), Algorithm(), Algorithm())

    @classmethod
    def of(cls, *algorithms: Algorithm, lifetime_s: int = 0, lifetime_kb: int = 0, pfs: int = 0) -> "Offer":
        slots = tuple(algorithms) + tuple(Algorithm() for _ in range(3 - len(algorithms)))
        return cls(lifetime_s, lifetime_kb, 0, pfs, len(algorithms), slots)


@dataclass(frozen=True)
class NegPolBlob:
    offers: Tuple[Offer, ...] = ()


def write_negpol(blob: NegPolBlob, flavor: str = "modern") -> bytes:
    payload = struct.pack("<I", len(blob.offers))
    for o in blob.offers:
        if len(o.slots) != 3:
            raise BlobError("ipsecNegotiationPolicy: an offer has exactly 3 algorithm slots")
        payload += _OFFER_HEAD.pack(o.lifetime_s, o.lifetime_kb, o.options, o.pfs, o.count)
        payload += b"".join(_ALGORITHM.pack(a.ident, a.integrity, a.kind, a.extra) for a in o.slots)
    return _frame(NEGPOL_TYPE, len(payload), payload, True)


def read_negpol(raw: bytes) -> NegPolBlob:
    r = _Reader(raw, NEGPOL_TYPE, "ipsecNegotiationPolicy")
    offers = []
    for _ in range(r.u32()):
        secs, kb, options, pfs, count = _OFFER_HEAD.unpack(r.take(_OFFER_HEAD.size))
        slots = tuple(Algorithm(*_ALGORITHM.unpack(r.take(_ALGORITHM.size))) for _ in range(3))
        if count > 3:
            raise BlobError("ipsecNegotiationPolicy: %d algorithms in one offer (at most 3)" % count)
        offers.append(Offer(secs, kb, options, pfs, count, slots))
    r.trailer()
    return NegPolBlob(tuple(offers))


# -- ipsecFilter ([MS-GPIPSEC] 2.2.1.5.1) -------------------------------------------------------------

@dataclass(frozen=True)
class FilterSpec:
    """One legacy filter record (70 bytes with empty strings). Ports are u16 little-endian
    (445 = `bd 01` in the Windows 10 capture); 'any' is 0.0.0.0/0.0.0.0 (Windows 10 capture)."""
    guid: str
    src: str = "0.0.0.0"
    src_mask: str = "0.0.0.0"
    dst: str = "0.0.0.0"
    dst_mask: str = "0.0.0.0"
    protocol: int = 0
    src_port: int = 0
    dst_port: int = 0
    mirrored: int = 1
    description: str = ""
    src_dns: str = ""
    dst_dns: str = ""
    tunnel: str = "0.0.0.0"
    is_tunnel: int = 0
    special: int = 0       # server type ([MS-GPIPSEC] 2.2.1.5.1; in no capture)
    options: int = 0


@dataclass(frozen=True)
class FilterBlob:
    filters: Tuple[FilterSpec, ...] = ()


def _filter_record(f: FilterSpec) -> bytes:
    return (wstring(f.src_dns) + wstring(f.dst_dns) + wstring(f.description) + guid_bytes(f.guid)
            + struct.pack("<I", f.mirrored) + ip_bytes(f.src) + ip_bytes(f.src_mask) + ip_bytes(f.dst)
            + ip_bytes(f.dst_mask) + ip_bytes(f.tunnel) + struct.pack("<IHHBBH", f.protocol, f.src_port, f.dst_port,
                                                                       f.is_tunnel, f.special, f.options))


def write_filter(blob: FilterBlob, flavor: str = "modern") -> bytes:
    """Windows 10 capture: Data-Length = the records only, no trailer. Windows 2000 capture:
    Data-Length = count + records, then 0x00 ([MS-GPIPSEC] 2.2.1.5.1 footnote on Data-Length)."""
    if flavor not in FLAVORS:
        raise BlobError("unknown blob flavor %r (%s)" % (flavor, ", ".join(FLAVORS)))
    records = b"".join(_filter_record(f) for f in blob.filters)
    payload = struct.pack("<I", len(blob.filters)) + records
    if flavor == "modern":
        return _frame(FILTER_TYPE, len(records), payload, False)
    return _frame(FILTER_TYPE, len(payload), payload, True)


def read_filter(raw: bytes) -> FilterBlob:
    r = _Reader(raw, FILTER_TYPE, "ipsecFilter")
    filters = []
    for _ in range(r.u32()):
        src_dns, dst_dns, description = r.wstring(), r.wstring(), r.wstring()
        guid = guid_text(r.take(16))
        mirrored = r.u32()
        src, src_mask, dst, dst_mask, tunnel = (ip_text(r.take(4)) for _ in range(5))
        protocol, src_port, dst_port, is_tunnel, special, options = struct.unpack("<IHHBBH", r.take(12))
        filters.append(FilterSpec(guid, src, src_mask, dst, dst_mask, protocol, src_port, dst_port, mirrored,
                                  description, src_dns, dst_dns, tunnel, is_tunnel, special, options))
    if r.rest()[:16] == guid_bytes(FILTER_V2_TYPE):
        # [I] the v2 section ([MS-GPIPSEC] 2.2.1.5.1) is in no capture and winsim never writes it.
        raise BlobError("ipsecFilter: a v2 filter section, which winsim does not read ([I])")
    r.trailer()
    return FilterBlob(tuple(filters))


def flavor_of_filter(raw: bytes) -> str:
    """Which writer made a filter blob: 'legacy' when Data-Length counts the filter count too."""
    r = _Reader(raw, FILTER_TYPE, "ipsecFilter")
    return "legacy" if r.data_length == len(raw) - 21 and raw.endswith(b"\x00") else "modern"


READERS = {"ipsecPolicy": read_policy, "ipsecISAKMPPolicy": read_isakmp, "ipsecNFA": read_nfa,
           "ipsecNegotiationPolicy": read_negpol, "ipsecFilter": read_filter}
WRITERS = {PolicyBlob: write_policy, IsakmpBlob: write_isakmp, NfaBlob: write_nfa, NegPolBlob: write_negpol,
           FilterBlob: write_filter}


def write(blob, flavor: str = "modern") -> bytes:
    return WRITERS[type(blob)](blob, flavor)



# -- the optional v2 filter section ([MS-GPIPSEC] 2.2.1.5.1, Filter-Policy-ID2 and Filter-Spec2) -------
# [I] In neither capture. winsim writes it after the legacy records only when a filter needs it
# (IPv6, an address range, "me" in a v2-only filter), holding every filter of the list.

V2_ANY, V2_SINGLE, V2_RANGE, V2_SUBNET, V2_ME = 0, 1, 2, 4, 8
V2_SERVERS = {"DNS": 0x10, "WINS": 0x20, "DHCP": 0x40, "GATEWAY": 0x80}
V2_IPV4, V2_IPV6, V2_BOTH = 1, 2, 3


@dataclass(frozen=True)
class V2Address:
    kind: int = V2_ANY
    version: int = V2_IPV4
    address: bytes = bytes(16)
    secondary: bytes = bytes(16)


@dataclass(frozen=True)
class V2Filter:
    guid: str
    src: V2Address = V2Address()
    dst: V2Address = V2Address()
    protocol: int = 0
    src_port: int = 0
    dst_port: int = 0
    mirrored: int = 1
    description: str = ""
    src_dns: str = ""
    dst_dns: str = ""
    flags: int = 0


_V2_ADDRESS = struct.Struct("<II16s16s")
_V2_PORT = struct.Struct("<IHH")


def _v2_record(f: V2Filter) -> bytes:
    out = wstring(f.src_dns) + wstring(f.dst_dns) + wstring(f.description) + guid_bytes(f.guid)
    out += struct.pack("<I", f.mirrored)
    for a in (f.src, f.dst):
        out += _V2_ADDRESS.pack(a.kind, a.version, a.address, a.secondary)
    for port in (f.src_port, f.dst_port):
        out += _V2_PORT.pack(1 if port else 0, port, 0)
    return out + struct.pack("<II", f.protocol, f.flags)


def write_filter_v2(blob: FilterBlob, v2: Tuple[V2Filter, ...]) -> bytes:
    """A modern filter blob with the v2 section after the legacy records ([I] Data-Length2 = the
    Filter-Spec2 records; Number-Of-Filters11 = the legacy count)."""
    records = b"".join(_v2_record(f) for f in v2)
    section = (guid_bytes(FILTER_V2_TYPE) + struct.pack("<III", len(records), len(blob.filters), len(v2))
               + records)
    return write_filter(blob, "modern") + section


def read_filter_v2(raw: bytes) -> Tuple[FilterBlob, Tuple[V2Filter, ...]]:
    """The legacy records and the v2 filters (empty when the blob has no v2 section)."""
    marker = guid_bytes(FILTER_V2_TYPE)
    head = _Reader(raw, FILTER_TYPE, "ipsecFilter")
    legacy_end = 24 + head.data_length
    if raw[legacy_end:legacy_end + 16] != marker:
        return read_filter(raw), ()
    legacy = read_filter(raw[:legacy_end])
    r = _Reader(marker + raw[legacy_end + 16:], FILTER_V2_TYPE, "ipsecFilter v2 section")
    _count11, count = r.u32(), r.u32()
    filters = []
    for _ in range(count):
        src_dns, dst_dns, description = r.wstring(), r.wstring(), r.wstring()
        guid = guid_text(r.take(16))
        mirrored = r.u32()
        src = V2Address(*_V2_ADDRESS.unpack(r.take(_V2_ADDRESS.size)))
        dst = V2Address(*_V2_ADDRESS.unpack(r.take(_V2_ADDRESS.size)))
        sport = _V2_PORT.unpack(r.take(_V2_PORT.size))[1]
        dport = _V2_PORT.unpack(r.take(_V2_PORT.size))[1]
        protocol, flags = r.u32(), r.u32()
        filters.append(V2Filter(guid, src, dst, protocol, sport, dport, mirrored, description, src_dns, dst_dns,
                                flags))
    r.trailer()
    return legacy, tuple(filters)
