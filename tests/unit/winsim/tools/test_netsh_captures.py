"""winsim's `netsh ipsec static show` held to Microsoft's published output (KB 4471134).

The article's samples collapse netsh's label padding (`Label: value`) and abridge: so the layout is
compared label by label (order, and the lines winsim prints that the sample leaves out), and the
values where the sample shows one rather than a placeholder (`<DateTime>`, `{ID}`, `<IP Address>`).
The object names and the commands are the article's own (the Adylkuzz policy it tells how to find).
"""
import os
import re

import pytest

from winsim.host import SimHost

CAPTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "captures")
ARTICLE_COMMANDS = (
    "add policy name=netbc", "add filterlist name=block", "add filteraction name=block action=block",
    "add filter filterlist=block any srcmask=32 srcport=0 dstaddr=me dstport=445 protocol=tcp description=445",
    "add rule name=block policy=netbc filterlist=block filteraction=block", "set policy name=netbc assign=y")
PLACEHOLDER = re.compile(r"^(<DateTime>|\{ID\}|<IP Address>)$")


def capture(name):
    with open(os.path.join(CAPTURES, name), encoding="ascii", newline="") as handle:
        return handle.read()


def fields(lines):
    """[(label, value)] of `Label : value` lines; other lines (headings, underlines) as (line, None)."""
    out = []
    for line in lines:
        label, colon, value = line.partition(":")
        out.append((label.strip(), value.strip()) if colon else (line, None))
    return out


@pytest.fixture
def infected(tmp_path):
    """A host with the policy KB 4471134 says the malware adds, made with the article's commands
    (its `add filter` passes `any` positionally, as netsh allows for srcaddr)."""
    host = SimHost("win", "127.0.0.2", "modern", str(tmp_path / "win"))
    for words in ARTICLE_COMMANDS:
        if " any " in words:
            words = words.replace(" any ", " srcaddr=any ")     # winsim takes tags only [I]
        assert host.run_tool(["netsh", "ipsec", "static"] + words.split()).rc == 0, words
    return host


@pytest.mark.parametrize("command, name, extra", [
    ("show policy all", "netsh_static_show_policy_all_kb4471134.txt", ["Store", "GUID", "No. of Rules"]),
    ("show filterlist all level=verbose", "netsh_static_show_filterlist_verbose_kb4471134.txt",
     ["Destination Mask"]),
])
def test_winsim_show_matches_the_articles_layout(infected, command, name, extra):
    printed = infected.run_tool(["netsh", "ipsec", "static"] + command.split())
    assert printed.rc == 0
    ours = [line for line in printed.stdout.splitlines() if line.strip()]
    theirs = fields(capture(name).splitlines())
    labels = [label for label, _ in theirs]
    # winsim pads every label to 23 characters, as the Windows 10 capture does
    assert all(re.match(r"^.{23}: \S", line) for line, value in zip(ours, fields(ours)) if value[1] is not None)
    mine = fields(ours)
    assert [label for label, _ in mine if label in labels] == labels              # same lines, same order
    assert [label for label, _ in mine if label not in labels] == extra           # what the sample leaves out
    shown = [(label, value) for label, value in mine if label in labels]
    for (label, value), (_, ours_value) in zip(theirs, shown):
        if value is not None and not PLACEHOLDER.match(value):
            assert ours_value == value, label


def test_last_modified_and_master_pfs_come_from_the_store(infected):
    """Last Modified is the policy key's whenChanged, Master PFS the ISAKMP blob's flag."""
    out = infected.run_tool("netsh ipsec static show policy name=netbc".split()).stdout
    stamp = re.search(r"^Last Modified {10}: (\d\d)/(\d\d)/(\d{4}) \d\d:\d\d:\d\d$", out, re.M)
    assert stamp is not None
    assert re.search(r"^Master PFS {13}: NO$", out, re.M)
