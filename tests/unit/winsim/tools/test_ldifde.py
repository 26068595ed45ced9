"""winsim's ldifde (export of the domain directory as LDIF) and the GPO a domain policy is assigned through."""
import base64

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.registry import RegTree, RegValue, decode_store
from winsim.state.domain import DEFAULT_DOMAIN_POLICY_GUID
from winsim.host import SimHost

NC = "DC=winsim,DC=test"
IPSEC = "CN=IP Security,CN=System," + NC
GPO = "CN=%s,CN=Policies,CN=System,%s" % (DEFAULT_DOMAIN_POLICY_GUID, NC)
GPO_IPSEC = "CN=IPSEC,CN=Windows,CN=Microsoft,CN=Machine," + GPO
ENGINE_ATTRIBUTES = ("objectClass,ipsecName,description,ipsecID,ipsecDataType,ipsecData,ipsecOwnersReference,"
                     "ipsecISAKMPReference,ipsecNFAReference,ipsecFilterReference,ipsecNegotiationPolicyReference,"
                     "ipsecNegotiationPolicyAction,ipsecNegotiationPolicyType,whenChanged")
FILE = r"C:\Windows\TEMP\winsec-0123abcd.ldf"


def ok(result):
    assert result.rc == 0, result
    return result.stdout


def member(tmp_path, personality="modern", name="web1"):
    return SimHost(name, "127.0.0.2", personality, str(tmp_path / name), domain_store=str(tmp_path / "domain"))


def netsh_script(host, *lines):
    host.fs["gpo.txt"] = "\n".join(("pushd ipsec static", "set store location=domain") + lines + ("popd",))
    return host.run_tool(["netsh", "-f", "gpo.txt"])


DOMAIN_POLICY = (
    "add filteraction name=Block action=block",
    "add filter filterlist=SMB srcaddr=any dstaddr=me protocol=TCP dstport=445",
    'add policy name="Domain Block" description=" caf\u00e9: a description long enough to be folded over two lines"',
    "add rule name=SMB policy=\"Domain Block\" filterlist=SMB filteraction=Block",
)
ASSIGN = 'set policy name="Domain Block" assign=yes gponame="Default Domain Policy"'


@pytest.fixture
def domain(tmp_path):
    host = member(tmp_path)
    ok(netsh_script(host, *DOMAIN_POLICY + (ASSIGN,)))
    return host


def parse_ldif(text):
    """[(dn, [(attr, value)])] with folded lines joined and base64 values decoded (str when UTF-8, else bytes)."""
    # Real ldifde keeps the dn line whole and folds attribute lines at 79 (captures/README.md).
    assert all(len(line) <= 79 for line in text.split("\r\n") if not line.startswith("dn:")), \
        "an attribute line is longer than 79 characters"
    unfolded = []
    for line in text.split("\r\n"):
        if line.startswith(" "):
            unfolded[-1] += line[1:]
        else:
            unfolded.append(line)
    entries = []
    for line in unfolded:
        if not line:
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            raw = base64.b64decode(value[1:].strip())
            try:
                value = raw.decode("utf-8") if name != "ipsecData" else raw
            except UnicodeDecodeError:
                value = raw
        else:
            value = value.lstrip(" ")       # `name:` whose value starts on the next line has no space
        if name == "dn":
            entries.append((value, []))
        else:
            entries[-1][1].append((name, value))
    return entries


def values(entry, name):
    return [v for attr, v in entry[1] if attr.lower() == name.lower()]


def export(host, *args, path="out.ldf"):
    result = host.run_tool(["ldifde", "-f", path] + list(args))
    return result, (parse_ldif(host.fs[path]) if result.rc == 0 else None)


def powershell(host, script):
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return host.run("PowerShell", ["-NoProfile", "-NonInteractive", "-EncodedCommand", encoded])


@pytest.mark.parametrize("personality", ["modern", "2003"])     # PowerShell 5.1 and 2.0 argument passing
def test_the_engine_read_script_exports_the_domain_store_through_cmd(tmp_path, personality):
    host = member(tmp_path, personality)
    ok(netsh_script(host, *DOMAIN_POLICY + (ASSIGN,)))
    script = "\n".join([
        '$f = "$env:TEMP\\winsec-0123abcd.ldf"',
        '$out = cmd /c ldifde -f "$f" -s winsim.test -d "CN=System,%s" -p subtree -r "(objectClass=ipsecBase)" '
        '-l "%s" 2>&1' % (NC, ENGINE_ATTRIBUTES),
        "$rc = $LASTEXITCODE",
        "if ($rc -eq 0) { Get-Content -LiteralPath $f; Remove-Item -LiteralPath $f }",
        "exit $rc",
    ])
    result = powershell(host, script)
    assert result.rc == 0, result
    assert not [k for k in host.fs if k.lower().endswith(".ldf")]          # removed again
    entries = parse_ldif(result.stdout.replace("\r\n", "\n").replace("\n", "\r\n"))
    dns = [dn for dn, _ in entries]
    assert GPO_IPSEC in dns and all(dn.endswith("," + IPSEC) for dn in dns if dn != GPO_IPSEC)
    assert sorted(v for e in entries for v in values(e, "objectClass") if v not in ("top", "ipsecBase")) == sorted(
        ["ipsecPolicy", "ipsecPolicy", "ipsecISAKMPPolicy", "ipsecNFA", "ipsecNFA", "ipsecNegotiationPolicy",
         "ipsecNegotiationPolicy", "ipsecFilter"])

    # The export is the store: rebuilt as registry values, the engine's decoder reads it back.
    root = r"HKEY_LOCAL_MACHINE\Export"
    tree = RegTree()
    for dn, attrs in entries:
        if dn == GPO_IPSEC:
            continue
        key = root + "\\" + dn.split(",", 1)[0][3:]
        for name, value in attrs:
            if name == "objectClass":
                tree.set(key, "className", RegValue("REG_SZ", value))
            elif name == "ipsecData":
                tree.set(key, name, RegValue("REG_BINARY", value))
            elif name.endswith("Reference"):
                old = tree.get(key, name)
                tree.set(key, name, RegValue("REG_MULTI_SZ", (old.data if old else ()) + (value,)))
            elif name not in ("ipsecDataType", "whenChanged"):
                tree.set(key, name, RegValue("REG_SZ", value))
    decoded, stored = decode_store(tree, root), host.domain.load()
    assert decoded.policy("Domain Block") == stored.policy("Domain Block")
    assert decoded.policy("Domain Block").description.startswith(" caf\u00e9: ")
    assert decoded.filterlist("SMB") == stored.filterlist("SMB")
    assert sorted(decoded.filteractions, key=lambda f: f.guid) == sorted(stored.filteractions, key=lambda f: f.guid)


def test_a_failing_export_reaches_the_script_as_output_and_exit_code(tmp_path):
    lone = SimHost("lone", "127.0.0.3", "modern", str(tmp_path / "lone"))
    script = ('$out = cmd /c ldifde -f "$env:TEMP\\winsec-1.ldf" -r "(objectClass=groupPolicyContainer)" '
              '-l "displayName" 2>&1\n"rc=$LASTEXITCODE"\n$out\n')
    result = powershell(lone, script)
    lines = result.stdout.splitlines()
    assert lines[0] == "rc=1" and 'Connecting to "(null)"' in lines and "An error has occurred in the program" in lines
    assert not lone.fs


def test_console_lines_and_the_entry_shape(domain):
    result, entries = export(domain, "-r", "(objectClass=ipsecPolicy)", "-d", IPSEC)
    assert result.stdout.splitlines() == [
        'Connecting to "dc1.winsim.test"', "Logging in as current user using SSPI",
        "Exporting directory to file out.ldf", "Searching for entries...", "Writing out entries.",
        "1 entries exported", "", "The command has completed successfully"]
    text = domain.fs["out.ldf"]
    assert text.startswith("dn: CN=ipsecPolicy{") and text.endswith("\r\n\r\n")
    assert text.splitlines()[1] == "changetype: add"        # the dn line is whole, as in a real export
    (dn, _), = entries
    entry = entries[0]
    policy = domain.domain.load().policy("Domain Block")
    assert dn == "CN=ipsecPolicy%s,%s" % (policy.guid, IPSEC)
    assert values(entry, "objectClass") == ["top", "ipsecBase", "ipsecPolicy"]
    assert values(entry, "ipsecDataType") == ["256"] and values(entry, "ipsecID") == [policy.guid]
    # non-SAFE-STRING and binary values; the long one starts on the next line, as in a real export
    assert "\r\ndescription::\r\n " in text and "\r\nipsecData:: " in text
    assert len(values(entry, "whenChanged")[0]) == len("YYYYMMDDHHMMSS.0Z")
    assert values(entry, "whenChanged")[0].endswith(".0Z")


def test_references_are_dns_of_exported_objects(domain):
    _, entries = export(domain)
    dns = {dn for dn, _ in entries}
    refs = [v for _, attrs in entries for name, v in attrs if name.endswith("Reference")]
    assert len(refs) >= 8 and all(r in dns for r in refs)
    policy, gpo_ipsec = [e for e in entries if "ipsecPolicy" in values(e, "objectClass")]
    assert len(values(policy, "ipsecNFAReference")) == 2                 # default response rule and SMB
    assert values(gpo_ipsec, "ipsecOwnersReference") == [policy[0]] and gpo_ipsec[0] == GPO_IPSEC


def test_scopes_and_base(domain):
    _, base = export(domain, "-d", IPSEC, "-p", "Base")
    assert [dn for dn, _ in base] == [IPSEC]
    _, one = export(domain, "-d", "cn=system, dc=winsim, dc=test", "-p", "ONELEVEL")
    assert [dn for dn, _ in one] == [IPSEC, "CN=Policies,CN=System," + NC]
    _, sub = export(domain, "/P", "subtree", "/D", GPO)
    assert [dn for dn, _ in sub][0] == GPO and GPO_IPSEC in [dn for dn, _ in sub]
    _, default = export(domain)
    assert default[0][0] == NC and len(default) > len(sub)
    missing = domain.run_tool(["ldifde", "-f", "x.ldf", "-d", "CN=Nowhere," + NC])
    assert missing.rc != 0 and "CN=Nowhere" in missing.stdout and "x.ldf" not in domain.fs
    assert domain.run_tool(["ldifde", "-f", "x.ldf", "-p", "tree"]).rc != 0


def test_filters(domain):
    def dns(flt):
        return [dn for dn, _ in export(domain, "-r", flt)[1]]
    policies = dns("(objectClass=ipsecPolicy)")                          # the policy and the GPO's IPSEC object
    assert len(policies) == 2 and dns("(&(objectClass=IPSECPOLICY)(ipsecName=domain block))") == policies
    with_filters = dns("(ipsecFilterReference=*)")                        # not the default response rule
    assert len(with_filters) == 1 and len(dns("(objectClass=ipsecNFA)")) == 2
    assert with_filters[0] in dns("(objectClass=ipsecNFA)")
    assert dns("(|(cn=System)(cn=Policies))") == ["CN=System," + NC, "CN=Policies,CN=System," + NC]
    assert dns("(&(objectClass=container)(!(cn=*E*)))") == [GPO, "CN=Microsoft,CN=Machine," + GPO,
                                                             "CN=Windows,CN=Microsoft,CN=Machine," + GPO]
    assert dns("(displayName=Default Domain*)") == [GPO]
    assert dns("(objectClass=groupPolicyContainer)") == [GPO]
    assert dns("(ipsecName=\\44omain Block)") == dns("(ipsecName=Domain Block)")      # RFC 4515 escape
    nothing = domain.run_tool(["ldifde", "-f", "none.ldf", "-r", "(objectClass=user)"])
    assert nothing.rc == 0 and "No Entries found" in nothing.stdout and domain.fs["none.ldf"] == ""
    for bad in ("objectClass=ipsecBase", "(objectClass=ipsecBase", "(&)", "(and(a=b))", "(cn>=a)"):
        result = domain.run_tool(["ldifde", "-f", "bad.ldf", "-r", bad])
        assert result.rc != 0 and "bad.ldf" not in domain.fs, bad


def test_attribute_list_limits_the_attributes(domain):
    _, entries = export(domain, "-r", "(objectClass=groupPolicyContainer)", "-l", "displayName")
    assert entries == [(GPO, [("changetype", "add"), ("displayName", "Default Domain Policy")])]
    _, entries = export(domain, "-r", "(objectClass=ipsecFilter)", "-l", " IPSECNAME , ipsecID,nosuch")
    assert [name for name, _ in entries[0][1]] == ["changetype", "ipsecName", "ipsecID"]


def test_gpo_ipsec_object_only_while_assigned(tmp_path):
    host = member(tmp_path)
    ok(netsh_script(host, *DOMAIN_POLICY))
    _, entries = export(host, "-d", GPO)
    assert GPO_IPSEC not in [dn for dn, _ in entries]
    ok(netsh_script(host, ASSIGN))
    _, entries = export(host, "-d", GPO_IPSEC, "-p", "base")
    policy = host.domain.load().policy("Domain Block")
    assert values(entries[0], "ipsecName") == ["Domain Block"]
    assert values(entries[0], "ipsecOwnersReference") == ["CN=ipsecPolicy%s,%s" % (policy.guid, IPSEC)]
    assert values(entries[0], "objectClass") == ["top", "ipsecBase", "ipsecPolicy"]
    ok(netsh_script(host, 'set policy name="Domain Block" assign=no gponame="default domain policy"'))
    _, entries = export(host, "-d", GPO)
    assert GPO_IPSEC not in [dn for dn, _ in entries]


def test_servers_and_non_members(tmp_path, domain):
    for server in ("WINSIM.TEST", "dc1.winsim.test"):
        assert ok(domain.run_tool(["ldifde", "-f", "a.ldf", "-s", server])).startswith('Connecting to "%s"' % server)
    for server in ("other.test", "dc2.winsim.test"):
        result = domain.run_tool(["ldifde", "-f", "b.ldf", "-s", server])
        assert result.rc != 0 and "Error connecting" in result.stdout and "b.ldf" not in domain.fs
    lone = SimHost("lone", "127.0.0.3", "modern", str(tmp_path / "lone"))
    result = lone.run_tool(["ldifde", "-f", "c.ldf", "-r", "(objectClass=ipsecBase)"])
    assert result.rc != 0 and "An error has occurred in the program" in result.stdout and "c.ldf" not in lone.fs


def test_switches(domain):
    for args, word in ((["-i", "-f", "in.ldf"], "-i"), (["-f", "x.ldf", "-x"], "-x"), (["-f", "x.ldf", "-q"], "-q"),
                       (["-r", "(cn=*)"], "-f"), (["-f"], "-f"), (["-f", "x.ldf", "stray"], "stray")):
        result = domain.run_tool(["ldifde"] + args)
        assert result.rc != 0 and word in result.stdout and "x.ldf" not in domain.fs, args
    ok(domain.run_tool(["LDIFDE.EXE", "/F", "u.ldf", "-u", "/R", "(cn=IPSEC)"]))
    assert parse_ldif(domain.fs["u.ldf"])[0][0] == GPO_IPSEC


@pytest.mark.parametrize("personality, present", [("modern", True), ("2008r2", True), ("2003", True), ("xp", False)])
def test_which_windows_has_ldifde(tmp_path, personality, present):
    host = member(tmp_path, personality)
    result = host.run("cmd", ["/c", "ldifde", "-f", "x.ldf"])
    assert (result.rc != 9009) == present
    if not present:
        assert "'ldifde' is not recognized" in result.stderr


def test_netsh_gponame_rules(tmp_path):
    host = member(tmp_path)
    ok(netsh_script(host, *DOMAIN_POLICY))
    unknown = netsh_script(host, 'set policy name="Domain Block" assign=yes gponame="Nope"')
    assert unknown.rc == 1 and "ERR IPsec[" in unknown.stdout and '"Nope"' in unknown.stdout
    assert host.domain.load().assigned == ""
    local = host.run_tool(["netsh", "ipsec", "static", "add", "policy", "name=L"])
    assert local.rc == 0
    refused = host.run_tool(["netsh", "ipsec", "static", "set", "policy", "name=L", "assign=yes",
                             "gponame=Default Domain Policy"])
    assert refused.rc == 1 and "domain store" in refused.stdout
    ok(netsh_script(host, ASSIGN))
    assert host.domain.load().assigned == "Domain Block"
    ok(host.run_tool(["gpupdate", "/target:computer", "/force"]))       # members still get it by Group Policy
    assert host.domain_assignment().name == "Domain Block"
    ok(netsh_script(host, "add policy name=Other", 'set policy name=Other assign=no gponame="Default Domain Policy"'))
    assert host.domain.load().assigned == "Domain Block"                # the GPO does not assign Other
