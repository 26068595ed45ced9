"""The domain store read from ldifde exports: LDIF parsing (RFC 2849) and decoding to a HostState."""
import base64

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import directory, ldif, plan, registry
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import HostState
from tests.unit.plugins.module_utils.ipsec import winsim_side as W

NC = "DC=corp,DC=example"
DDP = "{31B2F340-016D-11D2-945F-00C04FB984F9}"


def slammer_state():
    triples = [plan.rule_objects(name, [parse_filterspec(spec).filter])
               for name, spec in [("Block Inbound UDP 1434 Rule", "*=0:1434:UDP"),
                                  ("Block Outbound UDP 1434 Rule", "0=*:1434:UDP")]]
    policy, objects = plan.policy_objects("Block UDP 1434 Filter", triples, description="Slammer")
    return plan.plan_policy(HostState(), policy, rules_objects=objects).after


def fold(line, width=76):
    """RFC 2849 folding: continuation lines start with one space."""
    out = [line[:width]]
    line = line[width:]
    while line:
        out.append(" " + line[:width - 1])
        line = line[width - 1:]
    return out


def as_ldif(state, assigned_by=None):
    """An export as ldifde writes it: the objects winsim's registry writer makes of `state` (the same
    objects and ipsecData blobs as the directory's, [MS-GPIPSEC] 2.2.1) as directory entries, with
    references as DNs; optionally a GPO's IPSEC object referencing the assigned policy."""
    tree = W.store_tree(state, registry.LOCAL_ROOT, "legacy", now=1700000000)
    lines = ["version: 1", ""]
    dn_of = {}
    for key in tree.subkeys(registry.LOCAL_ROOT):
        leaf = key.rsplit("\\", 1)[-1]
        dn_of[leaf.casefold()] = "CN=%s,CN=IP Security,CN=System,%s" % (leaf, NC)
    for key in tree.subkeys(registry.LOCAL_ROOT):
        leaf = key.rsplit("\\", 1)[-1]
        values = tree.values(key)
        lines += ["dn: " + dn_of[leaf.casefold()], "changetype: add", "objectClass: top",
                  "objectClass: ipsecBase", "objectClass: " + tree.get(key, "className").data]
        for name, value in values.items():
            if name.casefold() == "classname":
                continue
            if value.type == "REG_BINARY":
                lines += fold("%s:: %s" % (name, base64.b64encode(value.data).decode()))
            elif value.type == "REG_MULTI_SZ":
                lines += ["%s: %s" % (name, dn_of[r.rsplit("\\", 1)[-1].casefold()]) for r in value.data]
            elif name.endswith("Reference"):
                lines += ["%s: %s" % (name, dn_of[value.data.rsplit("\\", 1)[-1].casefold()])]
            elif value.type == "REG_SZ" and value.data.isascii():
                lines += ["%s: %s" % (name, value.data)]
            elif value.type == "REG_SZ":
                lines += ["%s:: %s" % (name, base64.b64encode(value.data.encode("utf-8")).decode())]
        lines.append("")
    if assigned_by:
        policy = next(k for k in dn_of if k.startswith("ipsecpolicy"))
        lines += ["dn: CN=IPSEC,CN=Windows,CN=Microsoft,CN=Machine,CN=%s,CN=Policies,CN=System,%s" % (DDP, NC),
                  "changetype: add", "objectClass: top", "objectClass: ipsecBase", "objectClass: ipsecPolicy",
                  "ipsecOwnersReference: " + dn_of[policy], ""]
    return "\r\n".join(lines)


GPOS = ("dn: CN=%s,CN=Policies,CN=System,%s\r\nchangetype: add\r\ndisplayName: Default Domain Policy\r\n\r\n"
        "dn: CN={6AC1786C-016F-11D2-945F-00C04FB984F9},CN=Policies,CN=System,%s\r\nchangetype: add\r\n"
        "displayName: Default Domain Controllers Policy\r\n" % (DDP, NC, NC))


def test_ldif_folding_base64_and_comments():
    text = "# export\nversion: 1\n\ndn: CN=a,\n b\nchangetype: add\ncn: x\nipsecData:: AAEC\n AwQ=\n" \
           "name:: w6lsw6g=\ncn: y\n\ndn: CN=c\n"
    first, second = ldif.parse(text)
    assert first.dn == "CN=a,b" and first.values("CN") == ["x", "y"]
    assert first.values("ipsecData") == [b"\x00\x01\x02\x03\x04"] and first.first("name") == "\u00e9l\u00e8"
    assert second.dn == "CN=c" and second.attributes == {}


@pytest.mark.parametrize("text, says", [
    ("cn: x\n", "starts with `dn:`"),
    ("dn: CN=a\nchangetype: modify\n", "changetype"),
    ("dn: CN=a\nphoto:< file:///x\n", "URL"),
    ("dn: CN=a\nipsecData:: ***\n", "base64"),
    ("dn: CN=a\nnot ldif at all\n", "not LDIF"),
])
def test_ldif_rejects_what_an_export_never_holds(text, says):
    with pytest.raises(ldif.LdifError, match=says):
        ldif.parse(text)


def test_directory_decodes_the_same_state_as_the_registry_store():
    state = slammer_state()
    view = directory.decode(as_ldif(state), GPOS)
    assert plan.state_key(view.state) == plan.state_key(state)
    assert view.state.assigned == "" and view.assignments == {}
    assert view.gpo_names == ("Default Domain Controllers Policy", "Default Domain Policy")


def test_directory_reports_which_gpo_assigns_which_policy():
    state = slammer_state()
    view = directory.decode(as_ldif(state, assigned_by=DDP), GPOS, gpo="default domain policy")
    assert view.assignments == {"Default Domain Policy": "Block UDP 1434 Filter"}
    assert view.state.assigned == "Block UDP 1434 Filter"
    assert view.gpos_assigning("BLOCK udp 1434 filter") == ["Default Domain Policy"]
    other = directory.decode(as_ldif(state, assigned_by=DDP), GPOS, gpo="Default Domain Controllers Policy")
    assert other.state.assigned == ""


def test_an_empty_export_is_an_empty_store():
    view = directory.decode("", "")
    assert view.state == HostState() and view.gpo_names == ()


def test_objects_outside_the_ip_security_container_are_not_the_store():
    text = as_ldif(slammer_state()).replace("CN=IP Security,CN=System", "CN=Elsewhere,CN=System")
    assert directory.decode(text, GPOS).state.policies == ()


def test_non_ascii_names_survive_base64():
    triples = [plan.rule_objects("R\u00e8gle", [parse_filterspec("*=0:1434:UDP").filter])]
    policy, objects = plan.policy_objects("Blocage \u00e9t\u00e9 \u65e5\u672c", triples)
    state = plan.plan_policy(HostState(), policy, rules_objects=objects).after
    assert directory.decode(as_ldif(state), GPOS).state.policies[0].name == "Blocage \u00e9t\u00e9 \u65e5\u672c"


def test_export_arguments_name_the_domain_or_default_to_the_hosts_own():
    args = directory.export_args("corp.example", "objects")
    assert args[:4] == ["-s", "corp.example", "-d", "CN=System,DC=corp,DC=example"]
    assert args[args.index("-r") + 1] == "(objectClass=ipsecBase)"
    assert "ipsecData" in args[args.index("-l") + 1].split(",")
    assert directory.export_args("", "gpos") == ["-p", "subtree", "-r", "(objectClass=groupPolicyContainer)",
                                                "-l", "displayName"]


def test_assignments_after_a_plan_change_only_the_named_gpo():
    view = directory.decode(as_ldif(slammer_state(), assigned_by=DDP), GPOS)
    assert view.assignments_after("", "") == {"Default Domain Policy": "Block UDP 1434 Filter"}
    assert view.assignments_after("default domain policy", "") == {}
    assert view.assignments_after("Default Domain Controllers Policy", "X") == {
        "Default Domain Controllers Policy": "X", "Default Domain Policy": "Block UDP 1434 Filter"}
