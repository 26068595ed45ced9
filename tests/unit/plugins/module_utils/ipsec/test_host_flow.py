"""host.py: read -> plan -> check or write+verify, against a scripted stand-in for the host.

The stand-in answers the read script with a real `reg query /s` rendering of its store (the
registry codec's own encoder), and a write script by applying what the test tells it to.
"""
import hashlib
import re
from dataclasses import replace

import pytest
from ansible.plugins.shell.powershell import ShellModule

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import host, plan, registry, remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    AuthMethod, DomainAssignment, DynamicRule, HostState, ValidationError)
from tests.unit.plugins.module_utils.ipsec import winsim_side

OS_TEXT = {
    "modern": ("Windows Server 2022 Standard", "6.3", "20348"),
    "2003": ("Microsoft Windows Server 2003", "5.2", "3790"),
    "xp": ("Microsoft Windows XP", "5.1", "2600"),
}


def section(name, text, rc=0):
    return "%s begin %s\n%s\n%s end %s rc=%s\n" % (remote.MARK, name, text, remote.MARK, name, rc)


def host_print(text):
    """What the read script computes on the host: SHA-1 of the section's UTF-8 text, as
    [System.BitConverter]::ToString shows bytes (upper-case pairs joined by '-')."""
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest().upper()
    return "-".join(digest[i:i + 2] for i in range(0, 40, 2))


SECTION_OF = [(n.replace("-", "_"), n) for n in remote.SECTIONS]
_EXPECTED = re.compile(r"^if \(\$winsecfp_(\w+) -ne '([^']*)'\) \{ \$failed = -1 \}$", re.MULTILINE)


class FakeHost:
    """Answers the read script with the read sections of its state and their fingerprints, and a
    write script as the host would: its precheck compares the fingerprints the script expects
    with the state's, and only when they agree `write(state, body)` runs; then the read-back."""

    def __init__(self, state=HostState(), generation="modern", agent=4, dynamic_rc=0):
        self.state = state
        self.generation = generation
        self.agent = agent
        self.dynamic_rc = dynamic_rc
        self.scripts = []
        self.write = None          # f(state, body) -> (state, transcript prefix)
        self.between = []          # f(self) run before the n-th script: another writer
        self.dynamic_text = ""     # what `netsh ipsec dynamic show rule` prints
        self.rendered = {}
        self.rendered = {}
        self.stale = 0

    def sections(self):
        product, version, build = OS_TEXT[self.generation]
        os_text = ("\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\n"
                   "    ProductName    REG_SZ    %s\n    CurrentVersion    REG_SZ    %s\n"
                   "    CurrentBuildNumber    REG_SZ    %s\n" % (product, version, build))
        store = self.rendered.get(self.state)
        if store is None:       # written by winsim's registry writer, printed by winsim's reg query
            tree = winsim_side.winsim_tree(self.state)
            if self.state.domain:
                tree.set(registry.GPT_ROOT, "DSIPSECPolicyName", registry.RegValue("REG_SZ", self.state.domain.name))
                tree.set(registry.GPT_ROOT, "DSIPSECPolicyPath", registry.RegValue("REG_SZ", self.state.domain.path))
            store = winsim_side.reg_query(tree)
            self.rendered[self.state] = store
        dyn = "dynamic-ipseccmd" if self.generation == "xp" else "dynamic-netsh"
        dynamic = self.dynamic_text if self.dynamic_rc == 0 else (
            "'x' is not recognized as an internal or external command")
        parts = [("os", os_text, 0), ("store", store, 0),
                 ("policyagent", "        STATE              : %d  X" % self.agent, 0),
                 ("exempt", "ERROR: The system was unable to find the specified registry key or value.", 1),
                 (dyn, dynamic, self.dynamic_rc)]
        # the host prints and hashes `@($out) -join "`n"`: the lines without their CR
        return [(name, text.replace("\r\n", "\n"), rc) for name, text, rc in parts]

    def read_text(self):
        parts = self.sections()
        return ("".join(section(name, text, rc) for name, text, rc in parts)
                + section("fingerprint", "\n".join("%s=%s" % (name, host_print(text)) for name, text, _ in parts)))

    def execute(self, script):
        self.scripts.append(script)
        for change in self.between[len(self.scripts) - 1:len(self.scripts)]:
            if change:
                change(self)
        body = script.body
        if "$failed = 0" not in body:
            return 0, self.read_text(), ""
        now = {name.replace("-", "_"): host_print(text) for name, text, _ in self.sections()}
        expected = _EXPECTED.findall(body)
        assert expected, "a write script without a precheck"
        if any(now.get(name, "") != value for name, value in expected):
            self.stale += 1
            found = "\n".join("%s=%s" % (dict(SECTION_OF).get(name, name), now.get(name, "")) for name, _ in expected)
            return 0, section("stale", found, 1) + self.read_text(), ""
        self.state, prefix = self.write(self.state, body)
        suffix = self.read_text() if "begin os" in body else ""
        return 0, prefix + suffix, ""


def done_markers(body):
    return "".join("%s done %s\n" % (remote.MARK, n) for n in re.findall(r"'#winsec# done (\d+)'", body))


def slammer_planner(assign=True, rules=(("Block Inbound UDP 1434 Rule", "*=0:1434:UDP"),)):
    triples = [plan.rule_objects(name, [parse_filterspec(spec).filter]) for name, spec in rules]
    policy, objects = plan.policy_objects("Block UDP 1434 Filter", triples)
    return lambda actual: plan.plan_policy(actual, policy, rules_objects=objects, state="merged", assign=assign)


def correct_write(planner):
    """A host that does what the commands say: the planned state, every step done."""
    def write(state, script):
        return planner(state).after, done_markers(script)
    return write


def test_check_mode_reads_once_and_predicts_what_the_real_run_reads_back():
    planner = slammer_planner()
    checked = FakeHost()
    check = host.run(checked.execute, planner, check_mode=True)
    assert len(checked.scripts) == 1 and "$failed" not in checked.scripts[0]
    assert check["changed"] and check["round_trips"] == 1
    assert check["commands"][0].startswith("netsh ipsec static add policy")
    assert "Local IPSec Policy Active: 'Block UDP 1434 Filter'" in check["diff"]["after"]
    assert "Block UDP 1434 Filter" not in check["diff"]["before"]

    real = FakeHost()
    real.write = correct_write(planner)
    result = host.run(real.execute, planner, check_mode=False)
    assert len(real.scripts) == 2 and result["round_trips"] == 2
    assert result["changed"] and result["commands"] == check["commands"]
    assert result["after"] == check["after"]
    assert result["after"]["assigned"] == "Block UDP 1434 Filter"
    assert result["before"]["policies"] == []

    again = FakeHost(real.state)
    second = host.run(again.execute, planner, check_mode=False)
    assert not second["changed"] and second["commands"] == [] and len(again.scripts) == 1
    assert second["after"] == second["before"] == result["after"]


def test_verification_catches_a_host_that_did_something_else():
    planner = slammer_planner()
    fake = FakeHost()
    fake.write = lambda state, script: (state, done_markers(script))     # said yes, did nothing
    with pytest.raises(host.HostError, match="differs from the planned one") as err:
        host.run(fake.execute, planner, check_mode=False)
    assert err.value.result["after"]["policies"] == []
    assert err.value.result["round_trips"] == 2


def test_failed_step_reports_step_command_output_and_the_undo():
    planner = slammer_planner()
    fake = FakeHost()
    m = remote.MARK

    def write(state, script):
        return state, ("%s done 1\n%s failed 2 rc=1\nERR IPsec[05010] : filter list exists\n%s end failed\n"
                       "%s undone 1.1 rc=0\n%s end undone\n" % (m, m, m, m, m))
    fake.write = write
    with pytest.raises(host.HostError) as err:
        host.run(fake.execute, planner, check_mode=False)
    msg = str(err.value)
    assert "step 2 of" in msg and "add filterlist" in msg and "ERR IPsec[05010]" in msg
    assert "were undone" in msg
    assert err.value.result["after"]["policies"] == []


def test_failed_undo_says_the_host_is_left_partly_changed():
    fake = FakeHost()
    m = remote.MARK
    fake.write = lambda state, script: (state, "%s failed 3 rc=1\nboom\n%s end failed\n%s undone 2.1 rc=1\n"
                                               "ERR IPsec[05073]\n%s end undone\n" % (m, m, m, m))
    with pytest.raises(host.HostError, match="partly changed"):
        host.run(fake.execute, slammer_planner(), check_mode=False)


def test_unreadable_host_fails_before_planning():
    calls = []

    def execute(script):
        calls.append(script)
        return 1, "", "The term 'reg' is not recognized"
    with pytest.raises(host.HostError, match="did not complete.*not recognized"):
        host.run(execute, lambda actual: pytest.fail("planned"), check_mode=True)
    assert len(calls) == 1


def test_dynamic_change_needs_policyagent_running_and_says_how():
    rule = DynamicRule(parse_filterspec("*=0:1434:UDP").filter)
    fake = FakeHost(agent=1)
    with pytest.raises(host.HostError, match="sc start PolicyAgent") as err:
        host.run(fake.execute, lambda a: plan.plan_dynamic(a, [rule]), check_mode=False, dynamic=True)
    assert len(fake.scripts) == 1                   # nothing written
    assert err.value.result["commands"]             # but it says what it would have sent


def test_dynamic_changes_warn_that_they_are_volatile():
    rule = DynamicRule(parse_filterspec("*=0:1434:UDP").filter)
    result = host.run(FakeHost().execute, lambda a: plan.plan_dynamic(a, [rule]), check_mode=True, dynamic=True)
    assert host.DYNAMIC_WARNING in result["warnings"]
    assert any("dynamic" in c for c in result["commands"])


@pytest.mark.parametrize("state", ["absent", "cleared"])
def test_removing_dynamic_filters_does_not_warn_that_they_are_volatile(state):
    rule = DynamicRule(parse_filterspec("*=0:1434:UDP").filter)
    # planned against a store that holds the filter (the stand-in's dynamic listing is empty)
    result = host.run(FakeHost().execute,
                      lambda a: plan.plan_dynamic(replace(a, dynamic=(rule,)), [rule] if state == "absent" else [],
                                                  state=state),
                      check_mode=True, dynamic=True)
    assert result["commands"] and result["changed"]
    assert host.DYNAMIC_WARNING not in result["warnings"]


def test_missing_tool_names_the_dialect_option():
    fake = FakeHost(generation="xp", dynamic_rc=9009)
    with pytest.raises(host.HostError, match="ipseccmd.*`dialect`"):
        host.run(fake.execute, slammer_planner(), check_mode=True)


def test_detected_dialect_per_generation_and_override():
    for generation, dialect in (("modern", "netsh"), ("2003", "netsh"), ("xp", "ipseccmd")):
        result = host.run(FakeHost(generation=generation).execute, slammer_planner(), check_mode=True)
        assert result["dialect"] == dialect and result["os"]["generation"] == generation
        if dialect == "ipseccmd":
            assert result["commands"][0].startswith("ipseccmd")
    fake = FakeHost(generation="2003")
    forced = host.run(fake.execute, slammer_planner(), check_mode=True, dialect="ipseccmd")
    assert forced["dialect"] == "ipseccmd" and forced["commands"][0].startswith("ipseccmd")
    assert "ipseccmd show filters" in fake.scripts[0] and "cmd /c netsh" not in fake.scripts[0]


def test_domain_policy_override_is_warned():
    fake = FakeHost(HostState(domain=DomainAssignment("Corp IPsec", "LDAP://CN=ipsecPolicy{1},CN=IP Security")))
    result = host.run(fake.execute, slammer_planner(), check_mode=True)
    assert any("Corp IPsec" in w for w in result["warnings"])


def test_assigning_warns_which_policy_it_displaces():
    first = FakeHost()
    first.write = correct_write(slammer_planner())
    host.run(first.execute, slammer_planner(), check_mode=False)
    other = plan.rule_objects("Web", [parse_filterspec("*=0:80:TCP").filter])
    pol, objs = plan.policy_objects("Other", [other])
    result = host.run(FakeHost(first.state).execute,
                      lambda a: plan.plan_policy(a, pol, rules_objects=objs, assign=True), check_mode=True)
    assert any("unassigns policy 'Block UDP 1434 Filter'" in w for w in result["warnings"])


def test_secrets_never_reach_the_result():
    rule, flist, faction = plan.rule_objects("R", [parse_filterspec("*=0:80:TCP").filter], "permit")
    rule = replace(rule, auth=(AuthMethod("psk", "Sup3r-Secret"),))
    fake = FakeHost()
    m = remote.MARK
    fake.write = lambda state, script: (state, "%s failed 1 rc=1\nbad key Sup3r-Secret\n%s end failed\n" % (m, m))
    with pytest.raises(host.HostError) as err:
        host.run(fake.execute, lambda a: plan.plan_rule(a, "P", rule, flist, faction), check_mode=False)
    # it must reach the tool, through stdin and not in the script (Ansible logs scripts at -vvvvv)
    assert "Sup3r-Secret" not in fake.scripts[1] and "Sup3r-Secret" not in fake.scripts[1].body
    assert any("Sup3r-Secret" in value for value in fake.scripts[1].stdin)
    assert "Sup3r-Secret" not in repr(err.value.result) + str(err.value)
    assert "********" in str(err.value)


def big_planner(count=160):
    filters = [parse_filterspec("*=0:%d:TCP" % port).filter for port in range(1, count + 1)]
    policy, objects = plan.policy_objects("Big", [plan.rule_objects("Many", filters)])
    return lambda actual: plan.plan_policy(actual, policy, rules_objects=objects)


def test_a_batch_of_any_size_is_one_write_command_with_its_body_on_stdin():
    # issue 12.1: 160 filters used to be split over several scripts, each checked and undone alone
    planner = big_planner()
    fake = FakeHost()
    fake.write = correct_write(planner)
    result = host.run(fake.execute, planner, check_mode=False)
    read, write = fake.scripts
    assert result["round_trips"] == 2 and result["changed"] and len(result["commands"]) > 160
    assert len(ShellModule()._encode_script(write, strict_mode=False, preserve_rc=False)) < 1000 and write.stdin[-1] == remote.STDIN_END
    assert write.body.count("#winsec# done") == len(result["commands"])
    assert "notes" not in result or not any("scripts" in n for n in result["notes"])


def test_a_failed_step_undoes_the_whole_batch_in_the_same_command():
    planner = big_planner()
    fake = FakeHost()
    m = remote.MARK

    def write(state, body):
        # step 150 fails; the script's own undo lines cover the earlier steps, newest first
        undos = [int(n) for n in re.findall(r"'#winsec# undo (\d+)\.1'", body)]
        assert undos == sorted(undos, reverse=True) and undos[-1] == 1
        return state, ("".join("%s done %d\n" % (m, n) for n in range(1, 150))
                       + "%s failed 150 rc=1\nboom\n%s end failed\n" % (m, m)
                       + "".join("%s undone %d.1 rc=0\n%s end undone\n" % (m, n, m) for n in undos if n < 150))
    fake.write = write
    with pytest.raises(host.HostError, match="(?s)step 150 of .* were undone; the host is as it was") as err:
        host.run(fake.execute, planner, check_mode=False)
    result = err.value.result
    assert len(fake.scripts) == 2 and result["round_trips"] == 2
    assert result["changed"] is False and result["after"]["policies"] == []       # 12.6, 12.9
    assert result["planned"]["policies"][0]["name"] == "Big"


def test_a_block_of_the_management_connection_is_refused_unless_allowed():
    triples = [plan.rule_objects("No WinRM", [parse_filterspec("*=0:5985:TCP").filter])]
    policy, objects = plan.policy_objects("Lockout", triples)

    def planner(actual):
        return plan.plan_policy(actual, policy, rules_objects=objects, assign=True)
    fake = FakeHost()
    with pytest.raises(host.HostError, match="5985.*allow_lockout") as err:
        host.run(fake.execute, planner, check_mode=False)
    assert len(fake.scripts) == 1 and "No WinRM" in str(err.value)         # nothing written
    allowed = host.run(FakeHost().execute, planner, check_mode=True, allow_lockout=True)
    assert any("5985" in w for w in allowed["warnings"])
    # unassigned, it blocks nothing; a UDP block or another port is harmless too
    harmless = host.run(FakeHost().execute, lambda a: plan.plan_policy(a, policy, rules_objects=objects),
                        check_mode=True)
    assert harmless["changed"] and not any("connection" in w for w in harmless["warnings"])


def test_ipsecpol_is_refused_for_a_connected_host_before_any_trip():
    calls = []
    with pytest.raises(ValidationError, match="dialect.*state=rendered"):
        host.run(lambda script: calls.append(script), slammer_planner(), check_mode=True, dialect="ipsecpol")
    assert calls == []


# --- reports and arguments ----------------------------------------------------------------------

def test_state_report_is_plain_data_without_secrets_and_round_trips():
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import report
    rule, flist, faction = plan.rule_objects("R", [parse_filterspec("10.0.0.0/255.0.0.0=0:80:TCP").filter], "permit")
    rule = replace(rule, auth=(AuthMethod("psk", "Sup3r-Secret"),))
    state = HostState(policies=(plan.Policy("P", rules=(rule,)),), filterlists=(flist,), filteractions=(faction,),
                      assigned="p", dynamic=(DynamicRule(parse_filterspec("*=0:1434:UDP").filter),))
    data = report.state_to_dict(state)
    assert "Sup3r-Secret" not in repr(data) and data["policies"][0]["rules"][0]["auth"] == [
        {"kind": "psk", "value": report.SECRET_MASK}]
    assert data["policies"][0]["assigned"] is True            # names compare case-insensitively
    assert data["filterlists"][0]["filters"][0]["src"] == {"kind": "ip", "value": "10.0.0.0",
                                                           "mask": "255.0.0.0", "end": ""}
    back = report.state_from_dict(data)
    assert back.filterlists == state.filterlists and back.dynamic == state.dynamic
    assert back.policies[0].rules[0].auth[0].value == report.SECRET_MASK
    with pytest.raises(ValueError, match="unknown keys"):
        report.from_dict(plan.Policy, {"name": "P", "colour": "red"})


@pytest.mark.parametrize("generation,value,start", [
    ("xp", None, "Broadcast, multicast, RSVP, Kerberos"), ("xp", 1, "Kerberos and RSVP are not exempt"),
    ("2003", None, "Only IKE"), ("2003", 2, "Multicast and broadcast are not exempt"),
    ("modern", 7, "Only IKE"), ("modern", 0, "Broadcast, multicast"),
])
def test_exemptions_in_words(generation, value, start):
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.report import exemptions
    text = exemptions(generation, value)
    assert text.startswith(start), text
    assert ("NoDefaultExempt=%d" % value in text) if value is not None else "not set" in text


def test_filters_option_takes_specs_and_dicts_and_names_the_bad_item():
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import filters_option
    specs = filters_option("filters", ["*=0:1434:UDP", {"src": "any", "dst": "me", "protocol": "TCP", "dst_port": 80}])
    assert [(f.protocol, f.dst_port, f.mirrored) for f in specs] == [(17, 1434, False), (6, 80, True)]
    assert filters_option("filters", ["[*=0:1434:UDP]"], dynamic=True)[0].dst_port == 1434
    with pytest.raises(ValidationError, match=r"filters\[0\].*\[ \] brackets"):
        filters_option("filters", ["[*=0:1434:UDP]"])           # static: the action decides
    with pytest.raises(ValidationError, match=r"filters\[1\]"):
        filters_option("filters", ["*=0:1434:UDP", "(*=0:80:TCP)"], dynamic=True)
    with pytest.raises(ValidationError, match=r"filters\[0\].dst_port"):
        filters_option("filters", [{"dst_port": 99999, "protocol": "TCP"}])
    with pytest.raises(ValidationError, match="non-empty list"):
        filters_option("filters", [])


# --- the precheck, races and the state fact (issue 12.5, 12.6, 12.9; issue 11.3) -----------------

def another_writer(fake):
    """Another controller adds a policy of its own to the static store (Theirs, Theirs 2, ...)."""
    name = "Theirs" + ("" if fake.state.policy("Theirs") is None else " %d" % len(fake.state.policies))
    pol, objs = plan.policy_objects(name, [plan.rule_objects("T", [parse_filterspec("*=0:23:TCP").filter])])
    fake.state = plan.plan_policy(fake.state, pol, rules_objects=objs).after


def test_a_race_lost_after_a_fresh_read_plans_again_once_and_writes():
    planner = slammer_planner()
    fake = FakeHost()
    fake.write = correct_write(planner)
    fake.between = [None, another_writer]          # lands between our read and our write
    result = host.run(fake.execute, planner, check_mode=False)
    assert fake.stale == 1 and len(fake.scripts) == 3 and result["round_trips"] == 3
    assert any("another writer changed the host" in n for n in result["notes"])
    assert {p["name"] for p in result["after"]["policies"]} == {"Theirs", "Block UDP 1434 Filter"}
    assert [p["name"] for p in result["before"]["policies"]] == ["Theirs"]     # what the write was planned on


def test_a_race_lost_twice_fails_honestly_with_nothing_written():
    planner = slammer_planner()
    fake = FakeHost()
    fake.write = lambda state, body: pytest.fail("a step ran on a stale plan")
    fake.between = [None, another_writer, another_writer]
    with pytest.raises(host.HostError) as err:
        host.run(fake.execute, planner, check_mode=False)
    msg, result = str(err.value), err.value.result
    assert "twice in a row" in msg and "nothing was written by this task" in msg and "defect" not in msg
    assert result["changed"] is False and result["round_trips"] == 3 and fake.stale == 2
    assert "Block UDP 1434 Filter" not in [p["name"] for p in result["after"]["policies"]]


def netsh_dynamic_listing(spec):
    """What winsim's `netsh ipsec dynamic show rule` prints for one rule the netsh dialect adds."""
    import tempfile
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import dialects
    from winsim.host import SimHost
    sim = SimHost("w", "127.0.0.9", "modern", tempfile.mkdtemp())
    empty = HostState(policyagent="running")
    wanted = plan.plan_dynamic(empty, [DynamicRule(parse_filterspec(spec).filter)])
    for command in dialects.render(list(wanted.changes), "netsh", before=empty, after=wanted.after):
        assert sim.run_tool(list(command.argv)).rc == 0
    return sim.run_tool(["netsh", "ipsec", "dynamic", "show", "rule"]).stdout


NETSH_SHOWS_1434 = netsh_dynamic_listing("*=0:1434:UDP")


def test_a_dynamic_task_is_not_failed_by_a_static_change():
    rule = DynamicRule(parse_filterspec("*=0:1434:UDP").filter)
    fake = FakeHost()

    def write(state, body):
        fake.dynamic_text = NETSH_SHOWS_1434
        return replace(state, dynamic=(rule,)), done_markers(body)
    fake.write = write
    fake.between = [None, another_writer]
    result = host.run(fake.execute, lambda a: plan.plan_dynamic(a, [rule]), check_mode=False, dynamic=True)
    assert fake.stale == 0 and result["round_trips"] == 2
    assert "store" not in re.findall(r"\$winsecfp_(\w+) -ne", fake.scripts[1].body)


def test_the_verify_message_does_not_blame_the_code_when_another_writer_may_have_interleaved():
    planner = slammer_planner()
    fake = FakeHost()

    def write(state, body):
        after = planner(state).after
        pol, objs = plan.policy_objects("Other", [plan.rule_objects("O", [parse_filterspec("*=0:25:TCP").filter])])
        return plan.plan_policy(after, pol, rules_objects=objs).after, done_markers(body)   # someone without the lock
    fake.write = write
    with pytest.raises(host.HostError) as err:
        host.run(fake.execute, planner, check_mode=False)
    msg = str(err.value)
    assert "this is a defect in winsec.ipsec" not in msg
    assert "does not take that lock" in msg and "Global\\winsec.ipsec" in msg
    assert err.value.result["changed"] is True       # the host does differ from before


def test_refusals_report_nothing_changed_and_the_plan_under_planned():
    triples = [plan.rule_objects("No WinRM", [parse_filterspec("*=0:5985:TCP").filter])]
    policy, objects = plan.policy_objects("Lockout", triples)
    fake = FakeHost()
    with pytest.raises(host.HostError) as err:
        host.run(fake.execute, lambda a: plan.plan_policy(a, policy, rules_objects=objects, assign=True),
                 check_mode=False)
    result = err.value.result
    assert result["changed"] is False and "after" not in result and result["planned"]["assigned"] == "Lockout"
    agentless = FakeHost(agent=1)
    rule = DynamicRule(parse_filterspec("*=0:1434:UDP").filter)
    with pytest.raises(host.HostError) as err:
        host.run(agentless.execute, lambda a: plan.plan_dynamic(a, [rule]), check_mode=False, dynamic=True)
    assert err.value.result["changed"] is False
    under_gpo = FakeHost(HostState(domain=DomainAssignment("Corp IPsec", "LDAP://CN=ipsecPolicy{1},CN=IP Security")))
    with pytest.raises(host.HostError, match="when_domain_policy=fail") as err:
        host.run(under_gpo.execute, slammer_planner(), check_mode=False, when_domain_policy="fail")
    assert err.value.result["changed"] is False and len(under_gpo.scripts) == 1


def test_a_host_busy_past_the_wait_is_said_so_and_nothing_changed():
    with pytest.raises(host.HostError) as err:
        host.run(lambda script: (3, "#winsec# busy\r\n", ""), slammer_planner(), check_mode=False)
    assert "Global\\winsec.ipsec" in str(err.value) and "120 seconds" in str(err.value)
    assert err.value.result["changed"] is False and err.value.result["round_trips"] == 1


def fact_of(result):
    return result["ansible_facts"]["winsec_ipsec_state"]


def test_every_result_carries_the_state_fact_it_read():
    planner = slammer_planner()
    fake = FakeHost()
    check = host.run(fake.execute, planner, check_mode=True, host_name="win01")
    fact = fact_of(check)
    assert fact["version"] == 1 and fact["host"] == "win01" and fact["dialect"] == "netsh"
    assert fact["os"]["generation"] == "modern" and fact["read_at"].endswith("Z")
    assert fact["fingerprint"]["store"] == host_print(fake.sections()[1][1])
    assert fact["sections"]["store"]["text"] == fake.sections()[1][1]
    fake.write = correct_write(planner)
    written = fact_of(host.run(fake.execute, planner, check_mode=False, host_name="win01"))
    assert written["fingerprint"]["store"] == host_print(fake.sections()[1][1]) != fact["fingerprint"]["store"]


def test_a_matching_fact_makes_a_change_one_command():
    planner = slammer_planner()
    fake = FakeHost()
    fact = fact_of(host.run(fake.execute, planner, check_mode=True, host_name="win01"))
    fake.scripts.clear()
    fake.write = correct_write(planner)
    result = host.run(fake.execute, planner, check_mode=False, fact=fact, host_name="win01")
    assert len(fake.scripts) == 1 and result["round_trips"] == 1 and result["changed"]
    assert result["after"]["assigned"] == "Block UDP 1434 Filter"
    # the precheck compared the fact's fingerprints
    assert ("store", fact["fingerprint"]["store"]) in _EXPECTED.findall(fake.scripts[0].body)


def test_a_stale_fact_never_leads_to_a_write_and_costs_one_more_command():
    planner = slammer_planner()
    fake = FakeHost()
    fact = fact_of(host.run(fake.execute, planner, check_mode=True, host_name="win01"))
    another_writer(fake)                           # the host changed after the fact was taken
    fake.scripts.clear()
    written = []

    def write(state, body):
        written.append(state)
        return planner(state).after, done_markers(body)
    fake.write = write
    result = host.run(fake.execute, planner, check_mode=False, fact=fact, host_name="win01")
    assert fake.stale == 1 and result["round_trips"] == len(fake.scripts) == 2
    assert [s.name for s in written[0].policies] == ["Theirs"]        # written only on the fresh plan
    assert any("no longer as its state fact said (store changed)" in n for n in result["notes"])
    assert {p["name"] for p in result["after"]["policies"]} == {"Theirs", "Block UDP 1434 Filter"}


def test_a_fact_with_nothing_to_do_still_reads_once():
    planner = slammer_planner()
    fake = FakeHost()
    fake.write = correct_write(planner)
    fact = fact_of(host.run(fake.execute, planner, check_mode=False, host_name="win01"))
    fake.scripts.clear()
    result = host.run(fake.execute, planner, check_mode=False, fact=fact, host_name="win01")
    assert len(fake.scripts) == 1 and "$failed" not in fake.scripts[0].body and not result["changed"]


@pytest.mark.parametrize("spoil", ["other host", "version", "dialect", "no sections", "no fingerprint"])
def test_a_fact_that_is_not_this_hosts_is_ignored(spoil):
    planner = slammer_planner()
    fake = FakeHost()
    fact = dict(fact_of(host.run(fake.execute, planner, check_mode=True, host_name="win01")))
    if spoil == "other host":
        fact["host"] = "win02"
    elif spoil == "version":
        fact["version"] = 2
    elif spoil == "no sections":
        fact["sections"] = None
    elif spoil == "no fingerprint":
        fact["fingerprint"] = {}
    fake.scripts.clear()
    fake.write = correct_write(planner)
    result = host.run(fake.execute, planner, check_mode=False, fact=fact, host_name="win01",
                      dialect="ipseccmd" if spoil == "dialect" else "")
    assert len(fake.scripts) == 2 and "$failed" not in fake.scripts[0].body    # read first, as without a fact
    assert result["round_trips"] == 2


def test_check_mode_always_reads_and_writes_nothing_even_with_a_fact():
    planner = slammer_planner()
    fake = FakeHost()
    fact = fact_of(host.run(fake.execute, planner, check_mode=True, host_name="win01"))
    fake.scripts.clear()
    fake.write = lambda state, body: pytest.fail("check mode wrote")
    result = host.run(fake.execute, planner, check_mode=True, fact=fact, host_name="win01")
    assert len(fake.scripts) == 1 and "$failed" not in fake.scripts[0].body and result["changed"]


def test_a_refusal_found_on_a_fact_is_made_again_on_a_fresh_read():
    triples = [plan.rule_objects("No WinRM", [parse_filterspec("*=0:5985:TCP").filter])]
    policy, objects = plan.policy_objects("Lockout", triples)
    planner = lambda a: plan.plan_policy(a, policy, rules_objects=objects, assign=True)     # noqa: E731
    fake = FakeHost()
    fact = fact_of(host.run(fake.execute, slammer_planner(), check_mode=True, host_name="win01"))
    fake.scripts.clear()
    with pytest.raises(host.HostError, match="allow_lockout") as err:
        host.run(fake.execute, planner, check_mode=False, fact=fact, host_name="win01")
    assert len(fake.scripts) == 1 and "$failed" not in fake.scripts[0].body      # a read, never a write
    assert err.value.result["round_trips"] == 1


def test_a_fact_holding_a_key_or_of_the_domain_store_keeps_no_sections():
    rule, flist, faction = plan.rule_objects("R", [parse_filterspec("*=0:80:TCP").filter], "permit")
    rule = replace(rule, auth=(AuthMethod("psk", "Sup3r-Secret"),))
    state = plan.plan_rule(HostState(), "P", rule, flist, faction).after
    fake = FakeHost(state)
    result = host.run(fake.execute, lambda a: plan.plan_rule(a, "P", rule, flist, faction), check_mode=True,
                      host_name="win01")
    fact = fact_of(result)
    assert fact["sections"] is None and fact["fingerprint"]["store"]
    assert "Sup3r-Secret" not in repr(result)
