"""winsim's own ipseccmd filterspec reader (winsim/tools/filterspec.py), and a cross-check with the
engine's, which was written separately: where the two readers disagree, one of them is wrong."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import filterspec as engine

from winsim.tools import filterspec


@pytest.mark.parametrize("text, src, dst, protocol, ports, mirrored, kind", [
    ("*=0:1434:UDP", ("any",), ("me",), 17, (0, 1434), False, ""),                       # KB 813878
    ("0=*:1434:UDP", ("me",), ("any",), 17, (0, 1434), False, ""),                       # KB 813878
    ("[*=0:1434:UDP]", ("any",), ("me",), 17, (0, 1434), False, "block"),                # KB 813878 dynamic
    ("0:80+*::TCP", ("me",), ("any",), 6, (80, 0), True, ""),
    ("(10.1.0.0/255.255.0.0+0:445:TCP)", ("ip", "10.1.0.0", "255.255.0.0"), ("me",), 6, (0, 445), True, "pass"),
    ("10.0.0.0/8+*", ("ip", "10.0.0.0", "255.0.0.0"), ("any",), 0, (0, 0), True, ""),
    ("192.0.2.7=0::ICMP", ("ip", "192.0.2.7", "255.255.255.255"), ("me",), 1, (0, 0), False, ""),
    ("host.example+0::47", ("dns", "host.example"), ("me",), 47, (0, 0), True, ""),
])
def test_filterspecs_read_as_the_documented_grammar_says(text, src, dst, protocol, ports, mirrored, kind):
    spec = filterspec.parse(text)
    f = spec.filter
    side = lambda a: (a.kind,) if a.kind in ("any", "me") else ((a.kind, a.value) if a.kind == "dns"   # noqa: E731
                                                                 else (a.kind, a.value, a.mask))
    assert (side(f.src), side(f.dst), f.protocol, (f.src_port, f.dst_port), f.mirrored, spec.kind) == \
        (src, dst, protocol, ports, mirrored, kind)


@pytest.mark.parametrize("text, says", [
    ("*0=:1434:UDP", "is not 0, *"),                      # the KB's own typo
    ("*=0=*", "exactly one"),
    ("*0:1434:UDP", "exactly one"),
    ("*=0:1434:ICMP", "ports need protocol TCP or UDP"),
    ("*=0:70000:TCP", "not 0-65535"),
    ("*=0:80:XTP", "not ICMP, TCP"),
    ("[*=0:1434:UDP)", "does not end with ]"),
    ("2001:db8::1=0", "too many"),
    ("10.0.0.0/255.0.255.0+*", "not a network mask"),
    ("*=0:1:2:3", "too many"),
])
def test_bad_filterspecs_are_refused_with_the_reason(text, says):
    with pytest.raises(filterspec.FilterspecError, match=says.replace("*", r"\*")):
        filterspec.parse(text)


CORPUS = ["*=0:1434:UDP", "0=*:1434:UDP", "[*=0:1434:UDP]", "(0+*::ICMP)", "0:80+*::TCP", "10.0.0.0/8+*",
          "10.1.0.0/255.255.0.0+0:445:TCP", "0.0.0.0/0.0.0.0=0", "*+*:0:47", "a.example.com+0::ICMP",
          "192.0.2.1+192.0.2.2:53:UDP", "0+*:135:TCP", "*=0::RAW"]


@pytest.mark.parametrize("text", CORPUS)
def test_winsim_and_the_engine_read_filterspecs_alike(text):
    ours, theirs = filterspec.parse(text), engine.parse_filterspec(text, "-f")
    assert (ours.filter, ours.kind) == (theirs.filter, theirs.kind)
