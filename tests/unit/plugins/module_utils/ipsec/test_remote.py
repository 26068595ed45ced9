"""remote.py: the read and write scripts, and how their transcripts are read back."""
import base64
import re

import pytest
import tree_sitter
from ansible.plugins.shell.powershell import ShellModule
import tree_sitter_powershell

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import args, confirm, remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import IPsecError, ValidationError
from tests.unit.plugins.module_utils.ipsec.winsim_side import powershell_argument_values

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

# reg.exe value lines: Vista+ uses four spaces; XP/2003 reg.exe tabs ([I], both tolerated).
OS_MODERN = """
HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion
    ProductName    REG_SZ    Windows Server 2022 Standard
    CurrentVersion    REG_SZ    6.3
    CurrentBuildNumber    REG_SZ    20348
"""
OS_XP = ("\n! REG.EXE VERSION 3.0\n\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\n"
         "\tCurrentVersion\tREG_SZ\t5.1\n\tCurrentBuildNumber\tREG_SZ\t2600\n"
         "\tProductName\tREG_SZ\tMicrosoft Windows XP\n")
SC_RUNNING = """
SERVICE_NAME: PolicyAgent
        TYPE               : 20  WIN32_SHARE_PROCESS
        STATE              : 4  RUNNING
                                (STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)
        WIN32_EXIT_CODE    : 0  (0x0)
"""


def section(name, text, rc=0):
    return "%s begin %s\n%s\n%s end %s rc=%s\n" % (remote.MARK, name, text, remote.MARK, name, rc)


def assert_powershell(script):
    tree = PARSER.parse(script.encode("utf-8"))
    assert not tree.root_node.has_error, script


def step(*argv, undo=()):
    return remote.Step(tuple(argv), undo=tuple(undo), display=" ".join(argv))


def test_read_script_is_powershell_with_every_section():
    script = remote.read_script()
    assert_powershell(script)
    for name in ("os", "store", "policyagent", "exempt", "dynamic-netsh", "dynamic-ipseccmd"):
        assert "begin %s'" % name in script
    # `sc` alone is Set-Content in PowerShell; the service query must name sc.exe.
    assert "sc.exe query PolicyAgent" in script
    assert 'reg query "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\IPSec" /s' in script
    # Ansible strips lines and drops blank ones: the script must not depend on either.
    assert all(line == line.strip() and line for line in script.splitlines())


def test_read_script_with_forced_dialect_probes_only_that_tool():
    netsh = remote.read_script(dialect="netsh")
    assert "begin dynamic-netsh" in netsh and "cmd /c ipseccmd" not in netsh
    xp = remote.read_script(dialect="ipseccmd")
    assert "ipseccmd show filters" in xp and "cmd /c netsh" not in xp


def test_transcript_sections_and_facts():
    text = (section("os", OS_MODERN) + section("store", "ERROR: The system was unable to find the "
                                                       "specified registry key or value.", 1)
            + section("policyagent", SC_RUNNING)
            + section("exempt", "\nHKEY_LOCAL_MACHINE\\SYSTEM\\...\\PolicyAgent\n"
                                "    NoDefaultExempt    REG_DWORD    0x1\n")
            + section("dynamic-netsh", "", 0))
    t = remote.parse_transcript(text.replace("\n", "\r\n"))
    assert set(t.sections) == {"os", "store", "policyagent", "exempt", "dynamic-netsh"}
    info = remote.os_info(t.sections["os"])
    assert (info.generation, info.version, info.dialect) == ("modern", "6.3.20348", "netsh")
    assert remote.store_text(t.sections["store"]) == ""          # missing key = empty store
    assert remote.policyagent_state(t.sections["policyagent"]) == "running"
    assert remote.no_default_exempt(t.sections["exempt"]) == 1
    assert remote.dynamic_section(t).name == "dynamic-netsh"


@pytest.mark.parametrize("text,expected", [
    (OS_XP, ("xp", "ipseccmd", "5.1.2600")),
    (OS_MODERN.replace("6.3", "5.2").replace("20348", "3790"), ("2003", "netsh", "5.2.3790")),
    (OS_MODERN.replace("6.3", "5.0"), ("2000", "ipsecpol", "5.0.20348")),
    (OS_MODERN.replace("6.3", "6.1").replace("2022 Standard", "2008 R2 Standard"), ("2008r2", "netsh", "6.1.20348")),
    (OS_MODERN.replace("6.3", "6.0"), ("modern", "netsh", "6.0.20348")),
])
def test_os_generations(text, expected):
    info = remote.os_info(remote.Section("os", text, 0))
    assert (info.generation, info.dialect, info.version) == expected


def test_os_unreadable_is_an_error():
    with pytest.raises(IPsecError, match="Windows version"):
        remote.os_info(remote.Section("os", "ERROR: Access is denied.", 1))
    with pytest.raises(IPsecError, match="CurrentVersion"):
        remote.os_info(remote.Section("os", "    ProductName    REG_SZ    X", 0))


def test_store_errors_other_than_missing_fail():
    with pytest.raises(IPsecError, match="failed"):
        remote.store_text(remote.Section("store", "something odd", 5))


def test_policyagent_states_by_number():
    assert remote.policyagent_state(remote.Section("p", "STATE : 1  STOPPED", 0)) == "stopped"
    # localized label, same number
    assert remote.policyagent_state(remote.Section("p", "STATUS  : 4  EN_COURS", 0)) == ""
    assert remote.policyagent_state(remote.Section("p", "        STATE              : 4  WIRD_AUSGEFUEHRT", 0)) == "running"


def test_missing_tool_detection():
    assert remote.tool_missing(remote.Section("d", "'ipseccmd' is not recognized as an internal or external command", 1))
    assert remote.tool_missing(remote.Section("d", "", 9009))
    assert remote.tool_missing(remote.Section("d", "The following command was not found: ipsec dynamic show rule.", 1))
    assert not remote.tool_missing(remote.Section("d", "", 0))


def test_write_script_runs_steps_in_order_with_undo_newest_first():
    steps = [step("netsh", "ipsec", "static", "add", "policy", "name=A B", undo=[step("netsh", "x", "undo1")]),
             step("netsh", "ipsec", "static", "add", "filterlist", "name=it's", undo=[step("netsh", "x", "undo2")]),
             step("netsh", "ipsec", "static", "set", "policy", "name=A B", "assign=yes")]
    script = remote.write_script(steps)
    assert_powershell(script.body)
    lines = script.body.splitlines()
    runs = [ln for ln in lines if ln.startswith("$out = netsh")]
    assert [powershell_argument_values(r[len("$out = netsh "):-len(" 2>&1")]) for r in runs] == [
        ["ipsec", "static", "add", "policy", "name=A B"],
        ["ipsec", "static", "add", "filterlist", "name=it's"],
        ["ipsec", "static", "set", "policy", "name=A B", "assign=yes"]]
    undo_at = [i for i, ln in enumerate(lines) if ln.startswith("$uout = netsh")]
    assert [lines[i] for i in undo_at] == ["$uout = netsh 'x' 'undo2' 2>&1", "$uout = netsh 'x' 'undo1' 2>&1"]
    # the undo of step 2 runs only when a later step (3) failed; the read sections follow
    assert lines[undo_at[0] - 2] == "if ($failed -gt 2) {"
    assert script.body.index("$uout") < script.body.index("begin os")
    # the host-side lock is held from the first line to the last
    assert lines[0].startswith("$winseclock = New-Object System.Threading.Mutex($false, 'Global\\winsec.ipsec')")
    assert lines[-2:] == ["$winseclock.ReleaseMutex()", "exit 0"]


def test_write_script_refuses_a_program_that_is_not_a_bare_name():
    with pytest.raises(IPsecError):
        remote.write_script([step("netsh; Remove-Item x", "a")])


def test_domain_script_goes_through_a_temp_file():
    s = remote.Step(("netsh", "-f", "winsec-ipsec.netsh"), script="pushd ipsec static\n  set store location=domain\n\nadd policy name=X\npopd\n")
    script = remote.write_script([s], verify=False)
    assert_powershell(script.body)
    lines = script.body.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Set-Content -LiteralPath \"$env:TEMP\\winsec-"))
    head, values = lines[start].split(" -Value ")
    assert powershell_argument_values(values.replace("', '", "' '")) == [
        "pushd ipsec static", "set store location=domain", "add policy name=X", "popd"]
    path = head.split('"')[1]
    assert lines[start + 1] == '$out = netsh -f "%s" 2>&1' % path
    assert 'Remove-Item -LiteralPath "%s"' % path in lines


def test_transcript_steps_failure_and_undo():
    m = remote.MARK
    text = "\n".join([
        "%s done 1" % m, "%s done 2" % m,
        "%s failed 3 rc=1" % m, "ERR IPsec[05072] : No Policies", "%s end failed" % m,
        "%s undone 2.1 rc=0" % m, "%s end undone" % m,
        "%s undone 1.1 rc=1" % m, "ERR IPsec[05073]", "%s end undone" % m,
    ]) + "\n" + section("os", OS_MODERN)
    t = remote.parse_transcript(text)
    assert t.done == [1, 2]
    assert t.failed == (3, 1, "ERR IPsec[05072] : No Policies")
    assert [u[0] for u in t.undone] == ["2.1", "1.1"]
    assert [u[0] for u in t.undo_failed] == ["1.1"]
    assert "os" in t.sections


def test_section_text_cannot_fake_markers():
    fake = "%s done 7\n%s end os rc=0" % (remote.MARK, remote.MARK)
    t = remote.parse_transcript(section("store", fake) + section("os", OS_MODERN))
    assert t.done == [] and "done 7" in t.sections["store"].text


def test_a_big_batch_is_one_command_whose_body_travels_on_stdin():
    steps = [step("netsh", "ipsec", "static", "add", "filter", "filterlist=L", "dstport=%d" % i,
                  undo=[step("netsh", "ipsec", "static", "delete", "filter", "filterlist=L", "dstport=%d" % i)])
             for i in range(1, 121)]
    script = remote.write_script(steps)
    # the command line is the short bootstrap; it checks the stdin lines and their sentinel
    assert script.splitlines() == [
        "$winsecin = @($input)",
        "if ($winsecin.Count -ne 2 -or $winsecin[1] -ne 'winsec-end') { Write-Output '#winsec# stdin lost'; exit 1 }",
        "Invoke-Expression ([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($winsecin[0])))"]
    assert_powershell(script)
    assert len(ansible_command_line(script)) < 1000
    assert len(script.stdin) == 2 and script.stdin[-1] == remote.STDIN_END
    assert base64.b64decode(script.stdin[0]).decode("utf-8") == script.body
    numbers = [int(m) for m in re.findall(r"#winsec# done (\d+)'", script.body)]
    assert numbers == list(range(1, 121))
    assert script.body.count("begin os") == 1 and script.kind == "write"


def test_a_body_beyond_the_sane_bound_is_refused():
    with pytest.raises(IPsecError, match="split the change over several tasks"):
        remote.make_script(["Write-Output '%s'" % ("x" * 1000)] * (remote.MAX_BODY // 1000 + 1))


def ansible_command_line(script):
    """The command line Ansible's PowerShell shell plugin makes of `script` (what WinRM runs)."""
    return ShellModule()._encode_script(script, strict_mode=False, preserve_rc=False)


def test_the_read_script_travels_whole_and_takes_the_lock_first():
    script = remote.read_script()
    encoded = ansible_command_line(script)
    first = base64.b64decode(encoded.split()[-1]).decode("utf-16-le").splitlines()[0]
    assert first.startswith("$winseclock = New-Object System.Threading.Mutex")
    assert script.kind == "read" and script.stdin == () and script.body == script


def test_undo_steps_newest_first():
    a = step("a", undo=[step("ua")])
    b = step("b", undo=[step("ub1"), step("ub2")])
    assert [u.argv[0] for u in remote.undo_steps([a, b])] == ["ub1", "ub2", "ua"]


def test_a_non_ascii_body_arrives_exactly():
    name = "name=Pol\u00fc \U0001F600 \u65e5\u672c"
    script = remote.write_script([step("netsh", "ipsec", "static", "add", "filterlist", name)])
    assert base64.b64decode(script.stdin[0]).decode("utf-8") == script.body and name in script.body
    assert all(remote._STDIN_SAFE.match(line) for line in script.stdin)     # ASCII in every code page


def test_the_read_script_prints_every_section_and_their_host_computed_fingerprints():
    body = remote.read_script().body
    assert_powershell(body)
    assert "$winsecsha = New-Object System.Security.Cryptography.SHA1CryptoServiceProvider" in body
    assert body.count('$text = @($out) -join "`n"') == body.count("Write-Output $text") >= 7
    assert ("$winsecfp_store = [System.BitConverter]::ToString($winsecsha.ComputeHash("
            "[System.Text.Encoding]::UTF8.GetBytes($text)))") in body
    assert body.index("begin fingerprint") > body.index("end dynamic-netsh")
    assert '"dynamic-netsh=$winsecfp_dynamic_netsh"' in body
    t = remote.parse_transcript(section("os", OS_MODERN) + section("fingerprint", "os=AB-CD\nstore=\nexempt=01"))
    assert t.fingerprint == {"os": "AB-CD", "exempt": "01"}


def test_a_script_that_waited_in_vain_for_the_lock_is_busy():
    t = remote.parse_transcript("#winsec# busy\r\n")
    assert t.busy and not t.sections and remote.busy("#winsec# busy\r\n")
    assert "Write-Output '#winsec# busy'; exit 3" in remote.read_script()
    assert "catch [System.Threading.AbandonedMutexException] { $winsecheld = $true }" in remote.read_script()


# -- secrets travel on stdin, never in the script -------------------------------------------------

KEYS = ["S3cret-Key", "it's a $key `with` spaces", "back\\slash\\ end\\", 'q"uo"te and space', "--%", "@'"]


class RecordingHost:
    """A winsim host whose tools record argv and the file `netsh -f` would read."""

    def __init__(self, powershell="5.1"):
        from types import SimpleNamespace
        self.name = "win01"
        self.personality = SimpleNamespace(powershell=powershell, system_root=r"C:\\Windows")
        self.fs, self.calls = {}, []

    def run_tool(self, argv, stdin=""):
        from winsim.result import Result
        read = argv[2] if argv[:2] == ["netsh", "-f"] else None
        self.calls.append((argv, self.fs.get(read) if read else None))
        return Result("ok\r\n", "", 0)


def run_on_winsim(script, powershell="5.1"):
    """`script` as Ansible's winrm connection sends it: encoded command line, stdin through Send."""
    from winsim.shell import machine as shell
    host = RecordingHost(powershell)
    command = ShellModule()._encode_script(str(script), strict_mode=False, preserve_rc=False)
    stdin = "".join(line + "\r\n" for line in script.stdin).encode("ascii")
    result = shell.execute(host, command, stdin)
    return result, host


def psk_step(key, old):
    undo = remote.Step(("netsh", "ipsec", "static", "set", "rule", "name=R", "psk=" + old), display="undo",
                       hidden=("psk=" + old,))
    return remote.Step(("netsh", "ipsec", "static", "set", "rule", "name=R", "psk=" + key, "kerberos=yes"),
                       undo=(undo,), display="set rule psk=********", hidden=("psk=" + key,))


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
@pytest.mark.parametrize("key", KEYS)
def test_a_hidden_argument_reaches_the_tool_exactly_but_is_not_in_the_script(key, powershell):
    fail = remote.Step(("netsh", "fail"), display="fail")
    script = remote.write_script([psk_step(key, "old " + key), fail], verify=False)
    assert_powershell(script.body)
    assert key not in script.body and script.splitlines()[0] == remote.STDIN_HEADER
    assert "$winsecin[1] 'kerberos=yes'" in script.body and "'name=R' $winsecin[2] 2>&1" in script.body
    assert len(script.stdin) == 4 and script.stdin[-1] == remote.STDIN_END      # body, 2 keys, sentinel
    host = RecordingHost(powershell)

    def failing(argv, stdin=""):
        from winsim.result import Result
        host.calls.append((argv, None))
        return Result("", "ERR IPsec[05072]\r\n", 1) if argv[1] == "fail" else Result("ok\r\n", "", 0)
    host.run_tool = failing
    from winsim.shell import machine as shell
    shell.execute(host, ShellModule()._encode_script(str(script), strict_mode=False, preserve_rc=False),
                  "".join(v + "\r\n" for v in script.stdin).encode())
    # the step, the failing one, then the undo with the old key
    assert [argv for argv, _ in host.calls] == [
        ["netsh", "ipsec", "static", "set", "rule", "name=R", "psk=" + key, "kerberos=yes"],
        ["netsh", "fail"],
        ["netsh", "ipsec", "static", "set", "rule", "name=R", "psk=old " + key]]


def test_a_hidden_netsh_script_line_is_written_to_the_file_from_stdin():
    key = "it's $a key"
    line = 'set rule name=R psk="%s"' % key
    step = remote.Step(("netsh", "-f", "x"), script="pushd ipsec static\nset store location=domain\n%s\npopd\n" % line,
                       display="...", hidden=(line,))
    script = remote.write_script([step], verify=False)
    assert key not in script.body and script.stdin[1:] == (line, remote.STDIN_END)
    result, host = run_on_winsim(script)
    [(argv, text)] = host.calls
    assert argv[:2] == ["netsh", "-f"] and text.splitlines() == ["pushd ipsec static", "set store location=domain",
                                                                    line, "popd"]
    assert host.fs == {}        # removed after the run


def test_a_script_without_secrets_reads_no_stdin_and_a_secret_without_stdin_is_refused():
    plain = remote.write_script([step("netsh", "a")])
    assert len(plain.stdin) == 2 and "$winsecin[1]" not in plain.body      # the body and the sentinel only
    assert "$input" not in remote.read_script()
    with pytest.raises(IPsecError, match="internal"):
        remote.write_lines([psk_step("k", "o")])


def test_a_key_that_stdin_cannot_carry_is_refused_without_echo():
    with pytest.raises(IPsecError) as err:
        remote.write_script([psk_step("s\u00e9cret", "old")])
    assert "s\u00e9cret" not in str(err.value) and "ASCII" in str(err.value)
    with pytest.raises(ValidationError) as err:
        args.auth_option("auth", [{"kind": "psk", "value": "s\u00e9cret"}])
    assert "s\u00e9cret" not in str(err.value) and "auth[0].value" in str(err.value)
    assert args.auth_option("auth", [{"kind": "cert", "value": "CN=R\u00e9seau"}])[0].value == "CN=R\u00e9seau"


def test_many_secrets_go_in_one_script_each_on_its_own_stdin_line():
    steps = [psk_step("key-%03d" % i, "old-%03d" % i) for i in range(400)]
    script = remote.write_script(steps)
    assert "key-" not in script.body and "old-" not in script.body and "key-" not in script
    numbers = [int(n) for n in re.findall(r"\$winsecin\[(\d+)\]", script.body)]
    assert sorted(set(numbers)) == list(range(1, len(script.stdin) - 1))
    assert "$winsecin.Count -ne %d" % len(script.stdin) in script
    assert [v for v in script.stdin if v.startswith("psk=key")] == ["psk=key-%03d" % i for i in range(400)]


def test_commit_confirmed_batch_gets_the_old_key_from_stdin():
    c = confirm.Confirm(60)
    steps = c.steps([psk_step("new-key", "old key")], "modern")
    assert c.undo_shown[0] == "undo" and "old key" not in repr(c.report("confirmed"))
    script = remote.write_script(steps, verify=False, prelude=lambda stdin: [c.preamble(stdin)])
    assert "old key" not in script.body and "new-key" not in script.body
    assert script.splitlines()[0] == remote.STDIN_HEADER and script.count("$input") == 1
    assert script.body.index("Set-Content") < script.body.index("schtasks")
    result, host = run_on_winsim(script)
    batch = host.fs[next(k for k in host.fs if k.endswith(c.name + ".cmd"))]
    assert 'netsh ipsec static set rule name=R psk="old key"' in batch.splitlines()
    assert ["netsh", "ipsec", "static", "set", "rule", "name=R", "psk=new-key", "kerberos=yes"] in [
        argv for argv, _ in host.calls]


def test_a_script_whose_stdin_does_not_arrive_runs_nothing():
    script = remote.write_script([psk_step("k1", "k0")])
    from winsim.shell import machine as shell
    host = RecordingHost()
    result = shell.execute(host, ShellModule()._encode_script(str(script), strict_mode=False, preserve_rc=False))
    assert host.calls == [] and result.rc == 1 and remote.stdin_lost(result.stdout)
    assert not remote.stdin_lost(run_on_winsim(script)[0].stdout)
