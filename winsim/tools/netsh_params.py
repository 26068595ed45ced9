"""netsh's tag=value argument grammar and the value types of the ipsec context.

Rules (docs/windows-tools.md "netsh general rules", [H][E]): tags are optional when values come in order; a tag may be abbreviated to an
unambiguous prefix ([H] examples `srca=`, `mir=`, `qmsec=`); spaces around `=` are tolerated ([E]);
yes/no take y/n ([H]); keywords are case-insensitive ([E]).
"""
import ipaddress
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..state.model import (
    ANY, ME, PORT_PROTOCOLS, PROTOCOL_NUMBERS, SERVER_TYPES, Address, AuthMethod, QmOffer)

# Generic netsh texts [I]: worded like netsh's own shell messages, not verified on real Windows.
MISSING_PARAMS = ("One or more essential parameters were not entered.\n"
                  "Verify the required parameters, and reenter them.\n")
BAD_SYNTAX = "The syntax supplied for this command is not valid. Check help for the correct syntax.\n"


class NetshError(Exception):
    """A failed netsh command; `text` is what netsh prints."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text if text.endswith("\n") else text + "\n"


def ipsec_error(code: int, message: str) -> NetshError:
    """`ERR IPsec[NNNNN]` line: the prefix and number format is attested, `: message` is [I]
    (netsh_static_errors_EVIDENCE.txt)."""
    return NetshError("ERR IPsec[%05d] : %s" % (code, message))


@dataclass(frozen=True)
class Tag:
    name: str
    kind: str = "str"           # str | yesno | int | enum | addr | mask | proto | port | list
    choices: Tuple[str, ...] = ()
    repeat: bool = False        # may be given several times (rootca)


def merge_equals(tokens: Sequence[str]) -> List[str]:
    """Join `tag = value`, `tag= value` and `tag =value` into `tag=value` ([E] scripts)."""
    out: List[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "=" and out and i + 1 < len(tokens):
            out[-1] = out[-1] + "=" + tokens[i + 1]
            i += 2
            continue
        if tok.endswith("=") and "=" not in tok[:-1] and i + 1 < len(tokens) and tok != "=":
            out.append(tok + tokens[i + 1])
            i += 2
            continue
        if tok.startswith("=") and out and "=" not in out[-1] and tok != "=":
            out[-1] = out[-1] + tok
            i += 1
            continue
        out.append(tok)
        i += 1
    return out


def resolve_tag(given: str, spec: Sequence[Tag]) -> Tag:
    low = given.lower()
    for tag in spec:
        if tag.name == low:
            return tag
    hits = [tag for tag in spec if tag.name.startswith(low)]
    if len(hits) != 1:
        raise NetshError(BAD_SYNTAX)
    return hits[0]


def parse_tags(tokens: Sequence[str], spec: Sequence[Tag], required: Sequence[str] = ()) -> Dict[str, object]:
    """tokens -> {tag name: raw string (or list for repeatable tags)}; positional values fill the
    next unfilled tag in order."""
    values: Dict[str, object] = {}
    for tok in merge_equals(tokens):
        name, sep, value = tok.partition("=")
        if sep and name and not name.startswith(("\"", "'")) and " " not in name:
            tag = resolve_tag(name, spec)
        else:
            free = [t for t in spec if t.name not in values]
            if not free:
                raise NetshError(BAD_SYNTAX)
            tag, value = free[0], tok
        if tag.repeat:
            values.setdefault(tag.name, []).append(value)
        elif tag.name in values:
            raise NetshError(BAD_SYNTAX)
        else:
            values[tag.name] = value
    if any(name not in values for name in required):
        raise NetshError(MISSING_PARAMS)
    return values


# -- value types ---------------------------------------------------------------------------------

INVALID_VALUE = 5080    # [I] code invented for "invalid value for a tag"


def bad_value(tag: str, value: str, accepted: str) -> NetshError:
    return ipsec_error(INVALID_VALUE, "Invalid value '%s' for tag '%s'; expected %s." % (value, tag, accepted))


def yesno(tag: str, value: str) -> bool:
    low = value.lower()
    if low in ("yes", "y"):
        return True
    if low in ("no", "n"):
        return False
    raise bad_value(tag, value, "yes or no")


def integer(tag: str, value: str, low: int = 0, high: int = 2 ** 32 - 1) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise bad_value(tag, value, "an integer") from None
    if not low <= number <= high:
        raise bad_value(tag, value, "an integer from %d to %d" % (low, high))
    return number


def choice(tag: str, value: str, choices: Sequence[str]) -> str:
    low = value.lower()
    if low not in choices:
        raise bad_value(tag, value, " | ".join(choices))
    return low


def protocol(tag: str, value: str) -> int:
    upper = value.upper()
    if upper in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[upper]
    if value.isdigit():
        return integer(tag, value, 0, 255)
    raise bad_value(tag, value, "ANY, ICMP, TCP, UDP, RAW or 0-255")


def port(tag: str, value: str) -> int:
    return integer(tag, value, 0, 65535)


def check_ports(proto: int, src_port: int, dst_port: int) -> None:
    """[H] dynamic add rule: "If you specify a port, acceptable value is TCP or UDP"."""
    if (src_port or dst_port) and proto not in PORT_PROTOCOLS:
        raise ipsec_error(INVALID_VALUE, "Ports can be specified only with protocol TCP or UDP.")


def _mask(tag: str, value: str, family: int) -> str:
    bits = 32 if family == 4 else 128
    if value.isdigit():
        prefix = integer(tag, value, 1, bits)
        return str(ipaddress.ip_network("0.0.0.0/%d" % prefix).netmask) if family == 4 else str(prefix)
    if family == 4:
        try:
            return str(ipaddress.IPv4Network("0.0.0.0/" + value).netmask)
        except ValueError:
            pass
    raise bad_value(tag, value, "a mask or a prefix of 1 through %d" % bits)


def address(tag: str, value: str, mask_tag: str, mask: Optional[str]) -> Address:
    """netsh srcaddr/dstaddr [H add filter]: me, any, an IPv4/IPv6 address, a range, a DNS name or
    a server type."""
    low = value.lower()
    if low in ("me", "any"):
        if mask is not None:
            _mask(mask_tag, mask, 4)      # validated, then meaningless
        return ME if low == "me" else ANY
    if value.upper() in SERVER_TYPES:
        return Address("server", value.upper())
    first, dash, last = value.partition("-")
    if dash and _is_ip(first):
        if not _is_ip(last):
            raise bad_value(tag, value, "an address range of two specific addresses")
        lo, hi = ipaddress.ip_address(first), ipaddress.ip_address(last)
        if lo.version != hi.version or int(lo) > int(hi):
            raise bad_value(tag, value, "an address range of two specific addresses of one family")
        if mask is not None:
            raise bad_value(mask_tag, mask, "no mask with an address range")
        return Address("range", str(lo), end=str(hi))
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        if _is_dns_name(value):
            return Address("dns", value)
        raise bad_value(tag, value, "me, any, an IP address, a range, a DNS name or DNS|WINS|DHCP|GATEWAY") from None
    if mask is None:
        mask_text = "255.255.255.255" if ip.version == 4 else "128"
    else:
        mask_text = _mask(mask_tag, mask, ip.version)
    return canonical(Address("ip", str(ip), mask_text))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_dns_name(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    return all(label and len(label) <= 63 and label.replace("-", "").isalnum()
               and not label.startswith("-") for label in labels) and not value.replace(".", "").isdigit()


def check_generation(host, tag: str, value: str, addr: Address) -> None:
    """Windows Server 2003's netsh takes `(ip | dns | server)` ([H] ws2003 usage line) and its
    store has no v2 filter section (docs/policy-store.md 5.6): no IPv6, no ranges there."""
    if host.profile.blob_flavor == "legacy" and (addr.kind == "range" or ":" in addr.value):
        raise bad_value(tag, value, "an IPv4 address, a DNS name or a server type on this Windows version")


def canonical(addr: Address) -> Address:
    """One spelling per meaning, so that filters compare equal however they were written."""
    if addr.kind == "ip" and ":" not in addr.value:
        mask = addr.mask or "255.255.255.255"
        if addr.value == "0.0.0.0" and mask == "0.0.0.0":
            return ANY
        if addr.value == "0.0.0.0" and mask == "255.255.255.255":
            return ME        # the probable legacy encoding of "me" (docs/policy-store.md 5.5 [?])
        return Address("ip", addr.value, mask)
    return addr


def server_sides(src: Address, dst: Address) -> Tuple[Address, Address]:
    """[H] add filter remark 4: if source is a server type, dest is 'me' and vice-versa."""
    if src.kind == "server":
        return src, ME
    if dst.kind == "server":
        return ME, dst
    return src, dst


# -- security methods ----------------------------------------------------------------------------

def qm_offers(tag: str, value: str) -> Tuple[QmOffer, ...]:
    """[H] add filteraction: ESP[ConfAlg,AuthAlg]:k/s | AH[HashAlg]:k/s | AH[..]+ESP[..]:k/s,
    several separated by spaces."""
    offers = []
    for text in value.split():
        body, _, life = text.partition(":")
        kb = secs = 0
        if life:
            kb_part, _, s_part = life.partition("/")
            try:
                kb = int(kb_part.lower().rstrip("k")) if kb_part else 0
                secs = int(s_part.lower().rstrip("s")) if s_part else 0
            except ValueError:
                raise bad_value(tag, text, "ESP[ConfAlg,AuthAlg]:k/s or AH[HashAlg]:k/s") from None
        ah = conf = auth = ""
        for part in body.split("+"):
            name, _, algs = part.partition("[")
            algs = algs.rstrip("]")
            if name.upper() == "AH" and algs.upper() in ("MD5", "SHA1") and not ah:
                ah = algs.upper()
            elif name.upper() == "ESP" and not conf:
                c, _, a = algs.partition(",")
                conf = {"DES": "DES", "3DES": "3DES", "NONE": "None"}.get(c.upper(), "")
                auth = {"MD5": "MD5", "SHA1": "SHA1", "NONE": "None"}.get(a.upper(), "")
                if not conf or not auth or (conf == "None" and auth == "None"):
                    raise bad_value(tag, text, "ESP[DES|3DES|None,MD5|SHA1|None]")
            else:
                raise bad_value(tag, text, "ESP[ConfAlg,AuthAlg]:k/s or AH[HashAlg]:k/s")
        offers.append(QmOffer(ah=ah, esp_conf=conf, esp_auth=auth, lifetime_kb=kb, lifetime_s=secs))
    if not offers:
        raise bad_value(tag, value, "at least one security method")
    return tuple(offers)


def auth_methods(values: Dict[str, object], order: Sequence[str]) -> Optional[Tuple[AuthMethod, ...]]:
    """kerberos/psk/rootca in the order given on the command line (preference, [H] add rule
    remark 4); None when none was given ("dynamic defaults are used", remark 5)."""
    methods = []
    for name in order:
        if name == "kerberos" and "kerberos" in values:
            if yesno("kerberos", str(values["kerberos"])):
                methods.append(AuthMethod("kerberos"))
        elif name == "psk" and "psk" in values:
            methods.append(AuthMethod("psk", str(values["psk"])))
        elif name == "rootca" and "rootca" in values:
            methods.extend(AuthMethod("cert", _ca_name(str(v))) for v in values["rootca"])
    if not any(name in values for name in ("kerberos", "psk", "rootca")):
        return None
    return tuple(methods)


def _ca_name(value: str) -> str:
    """`"<certificate> certmap:(yes|no) excludecaname:(yes|no)"` ([H] add rule) -> the CA name;
    the mapping flags are validated, the model keeps the name only."""
    words = value.split()
    while words and words[-1].lower().startswith(("certmap:", "excludecaname:")):
        flag, _, answer = words.pop().partition(":")
        yesno(flag.lower(), answer)
    if not words:
        raise bad_value("rootca", value, '"<certificate> certmap:(yes|no) excludecaname:(yes|no)"')
    return " ".join(words)


def given_order(tokens: Sequence[str], spec: Sequence[Tag]) -> List[str]:
    """Tag names in the order they were written (for authentication preference)."""
    order = []
    for tok in merge_equals(tokens):
        name, sep, _ = tok.partition("=")
        if sep and name:
            try:
                order.append(resolve_tag(name, spec).name)
            except NetshError:
                pass
    return order


def match_word(word: str, choices) -> Optional[str]:
    """netsh accepts a command or context word abbreviated to an unambiguous prefix
    (`netsh int ip sh addr`)."""
    low = word.lower()
    if low in choices:
        return low
    hits = [c for c in choices if c.startswith(low)]
    return hits[0] if len(hits) == 1 else None


def lookup(words: Sequence[str], handlers: dict):
    """(handler, verb, noun) for the first two words of a context command, or None."""
    if not words:
        return None
    verb = match_word(words[0], {v for v, _ in handlers})
    if verb is None or len(words) < 2:
        return None
    noun = match_word(words[1], {n for v, n in handlers if v == verb})
    if noun is None:
        return None
    return handlers[(verb, noun)], verb, noun
