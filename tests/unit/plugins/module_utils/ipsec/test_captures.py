"""Our readers and winsim held to real Windows output (tests/fixtures/captures, sources in its README).

Each capture is fed to the reader that must understand it, and where winsim emulates the same
command, winsim's output is compared with the capture's shape: labels, separators, order.
"""
import os
import re
import struct

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import directory, ldif, registry
from winsim.state.domain import DirectoryEntry
from winsim.host import SimHost
from winsim.tools import ldifde

CAPTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "fixtures", "captures")
EXPORT = "ldifde_export_deleted_objects_ws2019.ldf"
DELETED = "CN=Deleted Objects,DC=tombwatcher,DC=htb"


def capture(name):
    with open(os.path.join(CAPTURES, name), encoding="ascii", newline="") as handle:
        return handle.read()


def sid_text(raw: bytes) -> str:
    """A binary SID ([MS-DTYP] 2.4.2.2) as S-1-... text."""
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack("<%dI" % count, raw[8:8 + 4 * count])
    return "S-%d-%d-%s" % (revision, authority, "-".join(str(s) for s in subs))


# --- ldifde: the export file --------------------------------------------------------------------

@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_ldif_reader_reads_a_real_ldifde_export(line_end):
    entries = ldif.parse(capture(EXPORT).replace("\n", line_end))
    assert [e.dn for e in entries][0] == DELETED and len(entries) == 4
    for entry in entries:
        # the value that starts on the next line and is folded at 78 comes back whole
        assert entry.first("distinguishedName") == entry.dn
        assert "changetype" not in entry.attributes                  # `changetype: add` dropped
    deleted = entries[1:]
    assert all(e.dn.startswith("CN=cert_admin\\0ADEL:") and e.dn.endswith("," + DELETED) for e in deleted)
    assert [e.first("lastKnownParent") for e in deleted] == ["OU=ADCS,DC=tombwatcher,DC=htb"] * 3
    sids = [sid_text(e.values("objectSid")[0]) for e in deleted]    # `objectSid::` kept as bytes
    assert sids == ["S-1-5-21-1392491010-1358638721-2126982587-%d" % rid for rid in (1109, 1110, 1111)]


def test_directory_decoder_takes_a_real_export_without_ipsec_objects():
    view = directory.decode(capture(EXPORT), "", "")
    assert view.state.policies == () and view.assignments == {} and view.gpo_names == ()


def records(text):
    """The capture's records as CRLF blocks (ldifde writes CRLF; the page shows LF), comments dropped."""
    body = "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))
    return [block + "\n\n" for block in body.strip("\n").split("\n\n")]


def test_winsim_writes_the_real_records_byte_for_byte():
    for block, entry in zip(records(capture(EXPORT)), ldif.parse(capture(EXPORT))):
        attributes = tuple((name, tuple(values)) for name, values in entry.attributes.items())
        written = ldifde.ldif([DirectoryEntry(entry.dn, attributes)], None)
        # attribute names come back in lower case from the reader; the capture's spelling is restored
        for name in ("distinguishedName", "objectSid", "lastKnownParent"):
            written = written.replace("\r\n%s:" % name.lower(), "\r\n%s:" % name)
        assert written == block.replace("\n", "\r\n")


def test_winsim_folds_long_values_as_ldifde_does_and_the_reader_unfolds_them():
    blob = bytes(range(256)) * 2
    text = ldifde.ldif([DirectoryEntry("CN=x," + DELETED, (("ipsecData", (blob,)),))], None)
    lines = text.split("\r\n")
    assert lines[2] == "ipsecData::" and all(line.startswith(" ") and len(line) <= 79 for line in lines[3:-3])
    assert ldif.parse(text)[0].values("ipsecData") == [blob]



MS_LDF = "ldf_microsoft_adlds_schema_excerpt.ldf"


def logical_lines(text):
    """[[first line, continuation lines...]] of an LDIF text, comments and blank lines left out."""
    groups = []
    for line in text.splitlines():
        if line.startswith(" "):
            groups[-1].append(line)
        elif line and not line.startswith("#"):
            groups.append([line])
    return groups


def test_ldif_reader_reads_microsofts_folded_dns_and_values():
    entries = ldif.parse(capture(MS_LDF))
    assert [e.dn for e in entries] == ["cn=%s,cn=Schema,cn=Configuration,dc=X" % cn for cn in (
        "ms-Authz-Member-Rules-In-Central-Access-Policy", "ms-DS-Az-Application-Data",
        "ms-DS-Egress-Claims-Transformation-Policy", "ms-DS-Primary-Computer", "ms-DS-PSO-Applies-To")]
    # a continuation line that starts with a space keeps it: only the first space is the fold
    assert entries[1].first("adminDescription").endswith("whatever information they may need to")
    assert entries[2].first("adminDescription").startswith("This is a link to a Claims Transformation "
                                                           "Policy Object for the egress claims (claims")


def test_winsim_breaks_attribute_lines_exactly_where_microsoft_does():
    """79 characters stay on one line, 80 go to continuation lines of a space and 78 characters."""
    text = capture(MS_LDF)
    widths = set()
    for group in logical_lines(text):
        name, kind, _ = re.match(r"([^:]+)(::?)(.*)", group[0]).groups()
        if name in ("dn", "changetype"):
            continue            # ldifde keeps its dn line whole (the export above); this writer folds it
        entry = ldif.parse("dn: x\n" + "\n".join(group))[0]
        value = entry.values(name)[0]
        assert ldifde.fold(ldifde.ldif_line(name, value)) == "\r\n".join(group)
        widths.add(len(ldifde.ldif_line(name, value)))
    assert {79, 80} <= widths                                   # both sides of the limit are in the sample


# --- ldifde: the console --------------------------------------------------------------------------

@pytest.fixture
def member(tmp_path):
    host = SimHost("web1", "127.0.0.2", "modern", str(tmp_path / "web1"), domain_store=str(tmp_path / "domain"))
    host.fs["p.txt"] = "\n".join(("pushd ipsec static", "set store location=domain",
                                  "add filterlist name=L", "popd"))
    assert host.run_tool(["netsh", "-f", "p.txt"]).rc == 0
    return host


def test_winsim_ldifde_console_matches_real_exports(member):
    result = member.run_tool(["ldifde", "-f", "test-comp01.txt", "-r", "(objectClass=ipsecFilter)"])
    lines = result.stdout.splitlines()
    msdoc = capture("ldifde_export_console_win11_msdoc.txt").splitlines()       # one entry exported
    assert re.fullmatch(r'Connecting to "[^"]+"', lines[0]) and re.fullmatch(r'Connecting to "[^"]+"', msdoc[0])
    assert lines[1:6] == msdoc[1:6]
    # The tail: a blank line, then the completion message (Evil-WinRM capture: its 4 progress dots
    # arrive on another stream, after the rest; on a console they follow "Writing out entries").
    evil = capture("ldifde_export_console_ws2019_evilwinrm.txt").splitlines()
    exported = next(i for i, line in enumerate(evil) if line.endswith(" entries exported"))
    count = re.fullmatch(r"Writing out entries(\d+) entries exported", evil[exported]).group(1)
    assert evil[-1] == "." * int(count)                                 # one dot per entry
    assert lines[6:] == evil[exported + 1:exported + 3] == ["", "The command has completed successfully"]
    assert result.rc == 0


# --- netsh ipsec static show ----------------------------------------------------------------------

def test_winsim_show_all_filterlist_block_matches_the_real_one(tmp_path):
    host = SimHost("ncirmlt001", "127.0.0.2", "modern", str(tmp_path / "h"))
    filter_words = "add filter filterlist=exampleFilterData srcaddr=any dstaddr=any protocol=tcp mirrored=no dstport="
    for words in ("add filterlist name=exampleFilterData description=ExampleDescription",
                  filter_words + "135", filter_words + "8080"):
        assert host.run_tool(["netsh", "ipsec", "static"] + words.split()).rc == 0
    ours = host.run_tool(["netsh", "ipsec", "static", "show", "all"]).stdout.splitlines()
    real = capture("netsh_static_show_all_filterlist_win10.txt").splitlines()
    assert ours[0] == "" and len(ours[1:]) == len(real)
    for mine, theirs in zip(ours[1:], real):
        assert mine[:25] == theirs[:25]                      # label, padding to 23, ": " (or a separator)
        if theirs.startswith("Last Modified"):
            assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d", mine[25:])
        elif theirs.startswith("GUID"):
            assert re.fullmatch(r"\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}", mine[25:])
        else:
            assert mine == theirs


# --- reg query: reg.exe 3.0 of XP/2003 --------------------------------------------------------------

XP_SAMPLES = [
    ("reg_query_xp_value_msdoc.txt", r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion",
     "DevicePath", registry.RegValue("REG_EXPAND_SZ", r"%SystemRoot%\inf")),
    ("reg_query_xp_dword_msdoc.txt", r"HKEY_LOCAL_MACHINE\Software\Microsoft\Windows NT\CurrentVersion"
     r"\Image File Execution Options\MyApp.exe", "StackTraceDatabaseSizeInMB", registry.RegValue("REG_DWORD", 24)),
]


def tabbed(text):
    """The published sample with its tab stops restored (the docs show the tabs expanded to 8 columns)."""
    return re.sub(r"^(    \S+) +(REG_\w+) +", lambda m: "%s\t%s\t" % (m.group(1), m.group(2)), text, flags=re.M)


@pytest.mark.parametrize("name, key, value, expected", XP_SAMPLES)
def test_reg_query_reader_takes_reg_exe_3_output(name, key, value, expected):
    text = capture(name)
    assert tabbed(text).expandtabs(8) == text                          # the sample is tab-aligned
    for variant in (text, tabbed(text)):
        assert registry.parse_reg_query(variant).get(key, value) == expected


@pytest.mark.parametrize("name, key, value, expected", XP_SAMPLES)
def test_winsim_xp_reg_query_prints_the_published_layout(tmp_path, name, key, value, expected):
    host = SimHost("xp1", "127.0.0.3", "xp", str(tmp_path / "xp1"))
    host.hive.tree.add_key(key)
    host.hive.tree.set(key, value, expected)
    printed = host.run_tool(["reg", "query", key, "/v", value]).stdout
    assert printed.replace("\r\n", "\n").expandtabs(8).strip("\n") + "\n" == capture(name)


def test_captures_readme_lists_every_capture():
    with open(os.path.join(CAPTURES, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    listed = set(re.findall(r"`([\w.-]+\.(?:txt|ldf))`", readme))
    assert listed == {n for n in os.listdir(CAPTURES) if n != "README.md"}

