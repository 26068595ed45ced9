"""ipseccmd / ipsecpol filterspecs, read by winsim itself (not by the engine's parser).

Grammar, from the Windows 2000 Resource Kit help "IPSecPol Syntax" ("A filterspec is of the
format: A.B.C.D/mask:port=A.B.C.D/mask:port:protocol") and KB 813878's commands (`*=0:1434:UDP`,
`0=*:1434:UDP`, dynamic `[*=0:1434:UDP]`):
- source on the left, destination on the right; `=` one direction, `+` a mirrored pair (public
  ipsecpol scripts: `0+*`, `0:80+*::TCP`);
- an address is `0` (this computer), `*` (any), an IPv4 address with an optional `/mask`
  (dotted, or [I] a prefix length), or [I] a DNS name; without a mask a host (255.255.255.255);
- each side may carry `:port` (empty or 0 = any); the destination may end in `:protocol`, a name
  (ICMP, TCP, UDP, RAW, or [I] ANY) or a number 0-255; a protocol needs the port field before it
  (`*::TCP`);
- the whole spec in `[ ]` is a block filter, in `( )` a pass-through one (KB 813878 shows `[ ]`;
  `( )` [I]).
[I] ports with a protocol other than TCP or UDP are refused, as are IPv6 addresses (the XP/2003
tools are IPv4-only as far as their documentation shows).
"""
import ipaddress
import re
from dataclasses import dataclass

from ..state.model import ANY, ME, Address, Filter

PROTOCOLS = {"ANY": 0, "ICMP": 1, "TCP": 6, "UDP": 17, "RAW": 255}
PORT_PROTOCOLS = (6, 17)
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class FilterspecError(ValueError):
    pass


@dataclass(frozen=True)
class Spec:
    filter: Filter
    kind: str = ""          # '' (the rule's -n decides), 'block' ([ ]) or 'pass' (( ))


def _mask(text: str, spec: str) -> str:
    if text.isdigit():
        if int(text) > 32:
            raise FilterspecError("mask /%s in %r is not 0-32" % (text, spec))
        return str(ipaddress.IPv4Network("0.0.0.0/%s" % text).netmask)
    try:
        ipaddress.IPv4Network("0.0.0.0/%s" % text)
    except ValueError:
        raise FilterspecError("mask %r in %r is not a network mask" % (text, spec)) from None
    return text


def _address(text: str, spec: str) -> Address:
    host, slash, mask = text.partition("/")
    if host == "0" and not slash:
        return ME
    if host == "*" and not slash:
        return ANY
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.version != 4:
            raise FilterspecError("%r: ipseccmd takes IPv4 addresses only" % spec)
        mask = _mask(mask, spec) if slash else "255.255.255.255"
        if str(ip) == "0.0.0.0" and mask == "0.0.0.0":
            return ANY
        return Address("ip", str(ip), mask)
    labels = host.rstrip(".").split(".")
    if not slash and host and not host.replace(".", "").isdigit() and all(_LABEL.match(label) for label in labels):
        return Address("dns", host)
    raise FilterspecError("%r is not 0, *, an IPv4 address[/mask] or a DNS name (in %r)" % (text, spec))


def _port(text: str, spec: str) -> int:
    if text == "":
        return 0
    if not text.isdigit() or int(text) > 65535:
        raise FilterspecError("port %r in %r is not 0-65535" % (text, spec))
    return int(text)


def _protocol(text: str, spec: str) -> int:
    if text.upper() in PROTOCOLS:
        return PROTOCOLS[text.upper()]
    if text.isdigit() and int(text) <= 255:
        return int(text)
    raise FilterspecError("protocol %r in %r is not ICMP, TCP, UDP, RAW or 0-255" % (text, spec))


def parse(text: str) -> Spec:
    spec, body, kind = text, text.strip(), ""
    if body[:1] in "[(" and body:
        closing = "]" if body[0] == "[" else ")"
        if not body.endswith(closing):
            raise FilterspecError("%r opens with %s but does not end with %s" % (spec, body[0], closing))
        body, kind = body[1:-1], ("block" if closing == "]" else "pass")
    separators = [c for c in body if c in "=+"]
    if len(separators) != 1:
        raise FilterspecError("%r needs exactly one = (one way) or + (mirrored) between source and destination"
                              % spec)
    left, right = body.split(separators[0])
    src_parts, dst_parts = left.split(":"), right.split(":")
    if len(src_parts) > 2 or len(dst_parts) > 3:
        raise FilterspecError("%r: too many ':' fields (source addr[:port], destination addr[:port[:protocol]])"
                              % spec)
    src, dst = _address(src_parts[0], spec), _address(dst_parts[0], spec)
    src_port = _port(src_parts[1], spec) if len(src_parts) == 2 else 0
    dst_port = _port(dst_parts[1], spec) if len(dst_parts) >= 2 else 0
    protocol = _protocol(dst_parts[2], spec) if len(dst_parts) == 3 else 0
    if (src_port or dst_port) and protocol not in PORT_PROTOCOLS:
        raise FilterspecError("%r: ports need protocol TCP or UDP" % spec)
    return Spec(Filter(src, dst, protocol, src_port, dst_port, separators[0] == "+"), kind)
