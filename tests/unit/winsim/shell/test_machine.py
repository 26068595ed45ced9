"""winsim.shell.machine: what a Windows host does with a WinRM command line (cmd.exe, PowerShell 5.1/2.0).

Every native command reaches a recording fake host, so each test sees the exact argv a tool would
get after PowerShell's legacy command-line building and the tool's CommandLineToArgvW split.
"""
import base64
import os
from types import SimpleNamespace

import pytest
from ansible.plugins.shell.powershell import ShellModule, _parse_clixml

from winsim.shell import machine as shell
from winsim.result import Result

QUOTING = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "module_utils", "ipsec",
                       "quoting.py")
IPSECCMD = r"C:\Program Files\Support Tools\ipseccmd.exe"
NOT_RECOGNIZED = ("%s : The term '%s' is not recognized as the name of a cmdlet, function, script "
                  "file, or operable program.\r\n")


class FakeHost:
    """Records every tool call; `replies` maps a tool name to the Result it gives."""

    def __init__(self, powershell="5.1", replies=None):
        self.name = "win01"
        self.personality = SimpleNamespace(powershell=powershell, system_root=r"C:\Windows")
        self.fs = {}
        self.calls = []
        self.replies = replies or {}

    def run_tool(self, argv, stdin=""):
        self.calls.append((argv, stdin))
        tool = argv[0]
        if tool in self.replies:
            return self.replies[tool]
        if tool in ("netsh", "reg", "tool", "sc.exe", IPSECCMD):
            return Result("ok\r\n", "", 0)
        return Result("", NOT_RECOGNIZED % (tool, tool), 1)

    @property
    def argv(self):
        return self.calls[-1][0]


def encoded(script, **kw):
    """The command line Ansible's winrm connection sends for a script."""
    return ShellModule()._encode_script(script, **kw)


def ps(script, host=None, raw=False, stdin=b""):
    """Run `script` as Ansible sends it: a module-style wrapper (strict mode and the exit-code
    trailer), or as `raw` does (neither)."""
    host = host or FakeHost()
    kw = dict(strict_mode=False, preserve_rc=False) if raw else {}
    return shell.execute(host, encoded(script, **kw), stdin), host


def errors(result):
    """stderr as Ansible's connection plugin reads it (CLIXML decoded)."""
    data = result.stderr.encode("utf-8")
    if data.startswith(b"#< CLIXML"):
        data = _parse_clixml(data)
    return data.decode("utf-8")


# -- the native-argument pipeline ------------------------------------------------------------

# Windows PowerShell 5.1 behaviours, each through parse -> evaluate -> legacy command line ->
# CommandLineToArgvW. Sources: about_Parsing / about_Quoting_Rules (argument mode, quote removal,
# --%), PowerShell issues #1995 (embedded quotes not escaped), #7400 and #26432 (trailing
# backslash escapes the closing quote), #6280 (empty strings dropped), #6291 (-x.y split at the
# period), #6467 (a quoted string followed by text is two arguments).
PS51_ARGUMENTS = [
    ('name="Block UDP 1434 Filter"', ["name=Block UDP 1434 Filter"]),
    ("'a b'", ["a b"]),
    ('"a`"b"', ["ab"]),
    ("'a\"b c'", ["ab c"]),
    ("'a\\\"b'", ['a"b']),
    ("'C:\\dir\\'", ["C:\\dir\\"]),
    ("'C:\\my dir\\' next", ['C:\\my dir" next']),
    ("$env:TEMP\\x", ["C:\\Windows\\TEMP\\x"]),
    ('"$env:TEMP\\a b"', ["C:\\Windows\\TEMP\\a b"]),
    ("'' b", ["b"]),
    ('""', []),
    ("'\"\"'", [""]),
    ("'Blöck 1434 ü'", ["Blöck 1434 ü"]),
    ("'it''s' ‘x’’y’", ["it's", "x’y"]),
    ("a,b 'c d',e", ["a,b", "c d,e"]),
    ("-p:'a b' -x", ["-p:a b", "-x"]),
    ("-foo.bar", ["-foo", ".bar"]),
    ("-name=\"a b\"", ["-name=a b"]),
    ("'a'b", ["a", "b"]),
    ("a`;b `$x", ["a;b", "$x"]),
    ("--% name=\"a b\" %TEMP% $x", ["name=a b", "C:\\Windows\\TEMP", "$x"]),
    ("--% \"a|b\" c | Out-Null", ["a|b", "c"]),
    ("srcaddr=me dstport=1434 protocol=UDP", ["srcaddr=me", "dstport=1434", "protocol=UDP"]),
]


@pytest.mark.parametrize("args,argv", PS51_ARGUMENTS)
def test_native_arguments_reach_the_tool_as_powershell_51_passes_them(args, argv):
    result, host = ps("tool " + args)
    assert result.rc == 0, errors(result)
    assert host.argv == ["tool"] + argv


def test_invocation_operator_with_a_quoted_path():
    result, host = ps("& '%s' -w REG -p \"Block UDP 1434\" -r \"Block Inbound\"" % IPSECCMD)
    assert result.rc == 0, errors(result)
    assert host.argv == [IPSECCMD, "-w", "REG", "-p", "Block UDP 1434", "-r", "Block Inbound"]


def test_variables_as_arguments():
    # A bare word with an embedded variable expands like a double-quoted string and is wrapped
    # because it has whitespace: one argument. An array variable gives one argument per element.
    result, host = ps("$name = 'Block UDP 1434'\n$list = 'a','b c'\ntool name=$name $list")
    assert host.argv == ["tool", "name=Block UDP 1434", "a", "b c"]


# -- what Ansible sends --------------------------------------------------------------------------

def test_ansible_wrapper_runs_and_propagates_the_tool_exit_code():
    host = FakeHost(replies={"netsh": Result("", "ERR IPsec[05072] : no such policy\r\n", 1)})
    result, _ = ps("netsh ipsec static delete policy name=\"Nope\"", host)
    assert result.rc == 1
    assert host.argv == ["netsh", "ipsec", "static", "delete", "policy", "name=Nope"]
    assert "ERR IPsec[05072]" in result.stderr      # native stderr passes through as text
    host = FakeHost(replies={"tool": Result("", "", 7)})
    assert ps("tool", host)[0].rc == 7


def test_raw_without_trailer_gives_1_unless_the_script_exits():
    host = FakeHost(replies={"tool": Result("x\r\n", "", 7)})
    result, _ = ps("tool", host, raw=True)
    assert (result.rc, result.stdout) == (1, "x\r\n")
    assert ps("tool; exit $LASTEXITCODE", host, raw=True)[0].rc == 7
    assert ps("tool; Write-Output done", host, raw=True)[0].rc == 0
    assert ps("exit 3", raw=True)[0].rc == 3


def test_here_strings_with_both_quotes_and_expansion():
    script = ("$a = @'\nit's \"single\" $env:TEMP\n'@\n"
              "$b = @\"\nit's \"double\" $env:TEMP `$x\n\"@\n"
              "$a\n$b")
    result, _ = ps(script)
    assert result.stdout == "it's \"single\" $env:TEMP\r\nit's \"double\" C:\\Windows\\TEMP $x\r\n"


def test_here_string_piped_into_a_native_tool_as_ascii_lines():
    result, host = ps("$script = @'\npushd ipsec static\nadd policy name=\"Blöck\"\n'@\n"
                      "$script | netsh -f -")
    assert host.argv == ["netsh", "-f", "-"]
    assert host.calls[-1][1] == 'pushd ipsec static\nadd policy name="Bl?ck"\r\n'


def test_if_elseif_else_on_lastexitcode():
    script = ("tool\nif ($LASTEXITCODE -eq 0) { 'zero' } elseif ($LASTEXITCODE -lt 5) { 'small' }"
              " else { \"big $LASTEXITCODE\" }")
    for rc, text in ((0, "zero"), (3, "small"), (9, "big 9")):
        host = FakeHost(replies={"tool": Result("", "", rc)})
        assert ps(script, host, raw=True)[0].stdout == text + "\r\n"


def test_match_filters_captured_lines_and_sets_matches():
    host = FakeHost(replies={"netsh": Result("Policy Name : A\r\nAssigned : YES\r\n", "", 0)})
    script = ("$out = netsh ipsec static show policy all 2>&1\n"
              "$hits = $out -match 'Assigned'\n"
              "if (\"$out\" -match 'Name : (\\w+)') { \"name=$($Matches[1])\" }\n"
              "$hits\n$out.Count\n"
              "if ($out -notmatch 'zzz') { 'filtered' }")
    result, _ = ps(script, host)
    assert result.stdout == "name=A\r\nAssigned : YES\r\n2\r\nfiltered\r\n"


def test_dotnet_named_groups():
    script = ("if ('Policy Name : Block 1434' -match 'Name : (?<name>.+)$') { $Matches['name'] }\n"
              "'a-a' -match '(?<c>a)-\\k<c>'\n'ab' -match '(?<=a)b'")
    assert ps(script)[0].stdout == "Block 1434\r\nTrue\r\nTrue\r\n"
    script = "'a-b' -replace '(\\w)-(?<x>\\w)', '$2 ${x} $1 $$ $0 $9 ${nope}'"
    assert ps(script)[0].stdout == "b b a $ a-b $9 ${nope}\r\n"


def test_replace_maps_over_a_collection():
    # about_Comparison_Operators: on a collection -replace returns each element replaced (no filter,
    # no joining with $OFS); a chained -replace takes the comma-bound pair as its right operand
    script = ("$a = @('x 1', 'y 2')\n$b = $a -replace 'x','' -replace '\\s',''\n$b.Count\n$b -join ','\n"
              "@() -replace 'a','b'")
    assert ps(script)[0].stdout == "2\r\n1,y2\r\n"


def test_format_operator():
    script = ("$n = 'Block'; '{0}-{1,4}|{2,-3}|{{x}}' -f $n, 12, 'a'\n"
              "'x' + '{0}' -f 1\n'{1}' -f 'only'")
    result, _ = ps(script, raw=True)
    assert result.stdout == "Block-  12|a  |{x}\r\nx1\r\n"
    assert result.rc == 1 and "Error formatting a string" in errors(result)


def test_logic_operators_and_like():
    script = ("if ((1 -lt 2) -and -not ($false -or $null)) { 'a' }\n"
              "if (!(Test-Path 'C:\\nope') -and 'Block UDP' -like 'block*') { 'b' }\n"
              "if ('10' -lt 9) { 'string compare' }\n"
              "if (10 -gt '9') { 'int compare' }")
    assert ps(script)[0].stdout == "a\r\nb\r\nstring compare\r\nint compare\r\n"


def test_unknown_cmdlet_fails_like_powershell():
    result, host = ps("Get-NetIPsecRule -All")
    assert result.rc == 1
    text = errors(result)
    assert text.startswith("Get-NetIPsecRule : The term 'Get-NetIPsecRule' is not recognized as "
                           "the name of a cmdlet, function, script file, or operable program.")
    assert "FullyQualifiedErrorId : CommandNotFoundException" in text
    assert result.stderr.startswith("#< CLIXML\r\n")     # as powershell.exe -EncodedCommand does
    result, _ = ps("& 'C:\\Tools\\none.exe' x")
    assert errors(result).startswith("& : The term 'C:\\Tools\\none.exe' is not recognized")


def test_syntax_error_runs_nothing():
    result, host = ps("tool first\nif ($x -eq 1 { 'x' }")
    assert result.rc == 1 and host.calls == []
    text = errors(result)
    assert "At line:3 char:" in text        # line 1 is Set-StrictMode
    assert "Missing closing ')' after expression in 'if' statement." in text
    assert "ParserError" in text


def test_cmd_style_chaining_is_a_parse_error_in_powershell_51():
    result, host = ps("tool a && tool b")
    assert result.rc == 1 and host.calls == []
    assert "The token '&&' is not a valid statement separator in this version." in errors(result)


def test_unsupported_construct_fails_loudly():
    result, host = ps("foreach ($x in 1,2) { tool $x }")
    assert result.rc == 1 and host.calls == []
    assert "outside the PowerShell subset" in errors(result)


def test_strict_mode_rejects_unset_variables():
    result, _ = ps("Write-Output $nothing")
    assert result.rc == 1
    assert "The variable '$nothing' cannot be retrieved because it has not been set." in \
        errors(result)
    assert ps("Write-Output \"[$nothing]\"", raw=True)[0].stdout == "[]\r\n"


def test_error_action_stop_turns_redirected_stderr_into_a_terminating_error():
    host = FakeHost(replies={"tool": Result("", "warning: something\r\n", 0)})
    script = "$ErrorActionPreference = 'Stop'\n$out = tool 2>&1\n'after'"
    result, _ = ps(script, host)
    assert result.rc == 1 and "after" not in result.stdout
    assert "tool : warning: something" in errors(result)
    assert "NativeCommandError" in errors(result)
    # Without the redirection the stderr text just passes through.
    result, _ = ps("$ErrorActionPreference = 'Stop'\ntool\n'after'", host)
    assert (result.rc, result.stdout) == (0, "after\r\n")


def test_redirected_stderr_makes_the_status_false_despite_exit_code_0():
    # PowerShell issues #10512 and #13393: Windows PowerShell sets $? to false when redirected
    # stderr output arrives, so `-Command` exits 1 although $LASTEXITCODE is 0.
    host = FakeHost(replies={"tool": Result("o\r\n", "warning\r\n", 0)})
    assert ps("tool 2>&1", host, raw=True)[0].rc == 1
    assert ps("tool 2>$null", host, raw=True)[0].rc == 1
    assert ps("tool 2>&1 | Out-Null", host, raw=True)[0].rc == 1
    assert ps("tool", host, raw=True)[0].rc == 0
    assert ps("tool 2>&1; exit $LASTEXITCODE", host, raw=True)[0].rc == 0


def test_redirections_and_out_null():
    host = FakeHost(replies={"tool": Result("o\r\n", "e\r\n", 0)})
    assert ps("tool > $null", host)[0].stdout == ""
    result, _ = ps("tool 2> $null", host)
    assert (result.stdout, result.stderr) == ("o\r\n", "")
    assert ps("tool | Out-Null", host)[0].stdout == ""
    result, _ = ps("tool 2>&1", host)
    assert result.stdout.startswith("o\r\ntool : e\r\nAt line:2 char:1")


def test_files_on_the_host():
    host = FakeHost()
    script = ("$p = \"$env:TEMP\\cmds.txt\"\n"
              "Set-Content -LiteralPath $p -Value 'line 1','line 2' -Encoding ASCII\n"
              "if (Test-Path -LiteralPath $p) { Get-Content $p }\n"
              "Remove-Item -LiteralPath $p -Force\n"
              "Test-Path $p")
    result, _ = ps(script, host)
    assert result.stdout == "line 1\r\nline 2\r\nFalse\r\n"
    assert host.fs == {}
    result, _ = ps("Remove-Item -LiteralPath 'C:\\nope.txt'", host)
    assert result.rc == 1 and "Cannot find path 'C:\\nope.txt' because it does not exist." in \
        errors(result)


def test_test_path_knows_folders_and_installed_tools():
    host = FakeHost()
    host.personality.tools = {"ipseccmd": r"C:\Program Files\Support Tools"}
    host.resolve_tool = lambda name: name if name.lower() == IPSECCMD.lower() else None
    result, _ = ps("Test-Path '%s'; Test-Path 'C:\\Program Files\\Support Tools\\'; "
                   "Test-Path $env:TEMP; Test-Path 'C:\\Tools\\ipseccmd.exe'" % IPSECCMD, host)
    assert result.stdout == "True\r\nTrue\r\nTrue\r\nFalse\r\n"


def test_set_content_keeps_what_its_encoding_can_hold():
    host = FakeHost()
    result, _ = ps("Set-Content -LiteralPath C:\\a.txt -Value 'Größe 日本'\n"
                   "Set-Content -LiteralPath C:\\u.txt -Value 'Größe 日本' -Encoding UTF8\n"
                   "Set-Content -LiteralPath C:\\o.txt -Value 'Größe' -Encoding Ascii\n"
                   "Set-Content -LiteralPath C:\\x.txt -Value 'x' -Encoding Klingon", host)
    assert host.fs == {"C:\\a.txt": "Größe ??\r\n", "C:\\u.txt": "Größe 日本\r\n",
                       "C:\\o.txt": "Gr??e\r\n"}
    assert result.rc == 1 and "Cannot bind parameter 'Encoding'" in errors(result)


def test_sc_is_set_content_in_powershell():
    # `sc` is an alias of Set-Content in Windows PowerShell: `sc query PolicyAgent` writes a file
    # named "query"; the service tool has to be called as sc.exe.
    result, host = ps("sc query PolicyAgent")
    assert host.calls == [] and host.fs == {"query": "PolicyAgent\r\n"}
    ps("sc.exe query PolicyAgent", host)
    assert host.argv == ["sc.exe", "query", "PolicyAgent"]


def test_environment_and_version():
    result, _ = ps("$env:COMPUTERNAME\n$env:SystemRoot\n$PSVersionTable.PSVersion.Major")
    assert result.stdout == "WIN01\r\nC:\\Windows\r\n5\r\n"


def test_host_streams():
    result, _ = ps("Write-Host -NoNewline 'a'; Write-Host 'b' 'c'; Write-Warning 'careful'; "
                   "Write-Verbose 'hidden'; Write-Verbose 'shown' -Verbose; $x = Write-Host 'd'")
    assert result.stdout == "ab c\r\nWARNING: careful\r\nVERBOSE: shown\r\nd\r\n"


def test_start_sleep_moves_the_host_clock():
    host = FakeHost()
    host.slept = []
    host.advance_time = host.slept.append
    result, _ = ps("Start-Sleep -Seconds 90; Start-Sleep -Milliseconds 500; Start-Sleep 2", host)
    assert result.rc == 0 and host.slept == [90.0, 0.5, 2.0]


def test_get_variable_as_ansible_uses_it():
    script = ("If (Get-Variable LASTEXITCODE -ErrorAction SilentlyContinue) { 'set' } "
              "Else { 'unset' }\ntool\n"
              "If (Get-Variable LASTEXITCODE -ErrorAction SilentlyContinue) { 'set' }")
    assert ps(script)[0].stdout == "unset\r\nok\r\nset\r\n"


# -- cmd.exe ---------------------------------------------------------------------------------------

def test_plain_winrm_command_runs_through_cmd():
    host = FakeHost()
    result = shell.execute(host, 'netsh ipsec static add policy name="A B" & echo done')
    assert host.argv == ["netsh", "ipsec", "static", "add", "policy", "name=A B"]
    assert (result.stdout, result.rc) == ("ok\r\ndone\r\n", 0)
    result = shell.execute(host, "ipconfig /all")
    assert result.rc == 9009
    assert result.stderr == ("'ipconfig' is not recognized as an internal or external command,"
                             "\r\noperable program or batch file.\r\n")


def test_cmd_c_from_powershell():
    host = FakeHost(replies={"tool": Result("", "", 2)})
    # %ERRORLEVEL% is expanded when the line is read, before tool runs.
    result, _ = ps('cmd /c "tool a^&b %TEMP% && echo no || echo yes& echo rc=%ERRORLEVEL%"',
                   host, raw=True)
    assert host.argv == ["tool", "a&b", "C:\\Windows\\TEMP"]
    assert result.stdout == "yes\r\nrc=0\r\n"
    result, _ = ps("cmd.exe /c exit 4; exit $LASTEXITCODE", host, raw=True)
    assert result.rc == 4


def test_child_processes_get_a_copy_of_the_environment():
    # (cmd expands %A% when it reads the line, before its own `set` runs.)
    result, _ = ps("$env:A = 'parent'\ncmd /c 'set A=child& echo %A%& set A'\n$env:A\n"
                   "cmd /c 'echo %A%'", raw=True)
    assert result.stdout == "parent\r\nA=child\r\nparent\r\nparent\r\n"


def test_cmd_quotes_after_c():
    host = FakeHost()
    shell.execute(host, 'cmd /c ""%s" -w REG -p "a b""' % IPSECCMD)
    assert host.argv == [IPSECCMD, "-w", "REG", "-p", "a b"]
    shell.execute(host, 'cmd /c "%s" show all' % IPSECCMD)
    assert host.argv == [IPSECCMD, "show", "all"]


def test_nested_encoded_powershell():
    inner = base64.b64encode("tool 'x y'; exit 6".encode("utf-16-le")).decode()
    host = FakeHost()
    result = shell.execute(host, "cmd /c powershell -NoProfile -EncodedCommand " + inner)
    assert (host.argv, result.rc) == (["tool", "x y"], 6)
    result, _ = ps("powershell.exe -NoProfile -EncodedCommand %s\nexit $LASTEXITCODE" % inner,
                   host, raw=True)
    assert (host.argv, result.rc) == (["tool", "x y"], 6)


def test_command_from_stdin():
    host = FakeHost()
    result = shell.execute(host, "PowerShell -NoProfile -NonInteractive -Command -",
                           b"tool 'a b'\nexit 5\n")
    assert (host.argv, result.rc) == (["tool", "a b"], 5)


# -- PowerShell 2.0 (2003, XP) ---------------------------------------------------------------------

def test_powershell_2_personality():
    host = FakeHost(powershell="2.0")
    assert ps("$PSVersionTable.PSVersion.Major", host)[0].stdout == "2\r\n"
    ps("tool --% 'a b'", host)
    assert host.argv == ["tool", "--%", "a b"]       # no stop-parsing token before 3.0
    result, _ = ps("Get-Content -Raw 'C:\\x'", host)
    assert "A parameter cannot be found that matches parameter name 'Raw'." in errors(result)
    # 2.0's error layout: no "name : " prefix, the <<<< marker instead of ~~~.
    text = errors(ps("Get-NetIPsecRule", host)[0])
    assert text.startswith("The term 'Get-NetIPsecRule' is not recognized")
    assert "\r\n+ Get-NetIPsecRule <<<< \r\n" in text


def test_no_powershell_at_all():
    host = FakeHost(powershell="")
    result = shell.execute(host, encoded("tool"))
    assert result.rc == 9009 and "'PowerShell' is not recognized" in result.stderr


# -- the engine's quoting, end to end ------------------------------------------------------------

HOSTILE = [
    "Block UDP 1434 Filter", "", " ", "a b", 'a"b', 'a" b', '"a b"', "a\\", "a b\\", "a\\\\b",
    'a\\"b', 'a b\\"', "C:\\Program Files\\x\\", "$env:TEMP", "`n", "a;b", "a&b", "a|b", "a>b",
    "(x)", "{x}", "@x", "#x", "-p", "-foo.bar", "-p:x y", "%TEMP%", "!x!", "^", "'",
    "''", "it's", "‘x’", "\u201cx\u201d", "Blöck ü", "a\u00a0b", "a\tb", "\u3000",
    "\\\\server\\share",
    'name="x y"', "x,y", "*", "?", "~",
]


def engine_quoting():
    if not os.path.exists(QUOTING):
        pytest.skip("plugins/module_utils/ipsec/quoting.py (the engine's quoting) does not "
                    "exist yet")
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import ValidationError
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.quoting import (
        powershell_native_args)
    return powershell_native_args, ValidationError


def test_engine_quoting_delivers_exactly_argv():
    powershell_native_args, ValidationError = engine_quoting()
    from tests.unit.hostile_corpus import HOSTILE_NAMES
    corpus = HOSTILE + [name for name in HOSTILE_NAMES if name != "--%"]
    delivered = 0
    for value in corpus:
        argv = ["static", value, "tail"]
        try:
            args = powershell_native_args(argv)
        except ValidationError:
            continue
        for program in ("netsh", "& '%s'" % IPSECCMD):
            result, host = ps("%s %s" % (program, args))
            assert result.rc == 0, (value, errors(result))
            assert host.argv[1:] == argv, (value, args)
        delivered += 1
    assert delivered >= len(corpus) - 6      # a few are rightly refused (odd quotes + a space)


def test_engine_quoting_delivers_a_stop_parsing_lookalike():
    powershell_native_args, ValidationError = engine_quoting()
    argv = ["static", "--%", "a b"]
    result, host = ps("netsh " + powershell_native_args(argv))
    assert host.argv[1:] == argv


def test_assigning_to_null_discards():
    result, host = ps("$null = tool 'a b'; $null -eq $null")
    assert (result.rc, result.stdout, host.argv) == (0, "True\r\n", ["tool", "a b"])
    assert ps("$true = 1")[0].rc == 1


def test_assignment_keeps_expression_values_and_collects_commands():
    result, _ = ps("$a = @(); $a.Count; $b = 'x','y'; $b.Count; $c = tool; $c.Count; $c", raw=True)
    assert result.stdout == "0\r\n2\r\n1\r\nok\r\n"
    # 3.0's intrinsic Count of a scalar is not there under strict mode.
    result, _ = ps("$s = 'x'; $s.Count")
    assert result.rc == 1 and "The property 'Count' cannot be found" in errors(result)


def test_cmd_redirections_use_the_host_files():
    host = FakeHost()
    result = shell.execute(host, r"echo pushd ipsec static> C:\s.txt & netsh -f - < C:\s.txt "
                                 r"& type C:\s.txt & type C:\none.txt 2>nul & netsh < C:\none.txt")
    # The blank before `&` belongs to the echo text, as in cmd.exe.
    assert host.fs == {"C:\\s.txt": "pushd ipsec static \r\n"}
    assert host.calls[-1] == (["netsh", "-f", "-"], "pushd ipsec static \r\n")
    assert result.stdout == "ok\r\npushd ipsec static \r\n"
    assert (result.stderr, result.rc) == ("The system cannot find the file specified.\r\n", 1)


FUZZ_PS = ["$x", "=", "'a b'", '"q $x"', "(", ")", "{", "}", "if", "else", "elseif", "-eq",
           "-match", "'r'", "|", "Out-Null", "2>&1", ">", "$null", ";", "\n", "tool", "@'\nh\n'@",
           '@"\nh $x\n"@', "`", "#c", "<#", "#>", "exit", "1", ",", "-not", "!", "$env:TEMP",
           "--%", "&", "&&", "-p:", ".", "[", "]", "$(", "@(", "Write-Output", "Set-Content",
           "-Value", "cmd", "/c", "echo", "%TEMP%", "^", '"', "'", "-f", "Get-Content", "throw",
           "return", "-and", "+", "$LASTEXITCODE"]
FUZZ_CMD = ["cmd", "/c", "/s", "echo", "echo.", "&", "&&", "||", "|", ">", ">>", "2>&1", "<", "nul",
            "C:\\f.txt", '"', '"a b"', "^", "%TEMP%", "%", "exit", "/b", "3", "type", "set", "X=1",
            "tool", "powershell", "-c", "-EncodedCommand", "Zm9v", "-Command", "-", "'x'", "("]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_input_always_gives_a_result(seed):
    """Whatever arrives, the shell answers with a Result (an error is fine, a crash or hang is
    not)."""
    import random
    import signal
    rng = random.Random(seed)

    def hang(*_):
        raise TimeoutError("the shell hung")
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(20)
    try:
        for _ in range(1500):
            script = " ".join(rng.choice(FUZZ_PS) for _ in range(rng.randint(1, 12)))
            result = shell.run_script(shell.Machine(FakeHost()), script, clixml=True)
            assert isinstance(result.rc, int) and isinstance(result.stderr, str), script
            line = " ".join(rng.choice(FUZZ_CMD) for _ in range(rng.randint(1, 10)))
            result = shell.execute(FakeHost(), line, b"tool\n")
            assert isinstance(result.rc, int) and isinstance(result.stdout, str), line
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


VALID_SCRIPTS = [
    'netsh ipsec static add filter filterlist="Block UDP 1434" srcaddr=me dstport=1434',
    "$out = reg query 'HKLM\\SOFTWARE' /s 2>&1\n$rc = $LASTEXITCODE\nWrite-Output $out",
    "if ($rc -ne 0 -or $out -match 'ERR IPsec\\[') {\n$failed = 1\n} elseif (!$x) { 'b' }\n"
    "else { exit 3 }",
    "Set-Content -LiteralPath \"$env:TEMP\\x.txt\" -Value @'\npushd ipsec static\n'@",
    "& 'C:\\Program Files\\Support Tools\\ipseccmd.exe' -w REG -p 'a b' | Out-Null",
    "If (-not $?) { If (Get-Variable LASTEXITCODE -ErrorAction SilentlyContinue) "
    "{ exit $LASTEXITCODE } Else { exit 1 } }",
    "$a = @(); $b = 'x', 'y'; \"$($b.Count) $env:TEMP\" # comment\n<# block #> tool --% a \"b\"",
]
INVALID_SCRIPTS = ["if ($x -eq 1 { 'x' }", "tool 'unterminated", "if ($x) { 'a' ", "$x = (1",
                   "Write-Output \"a"]


def test_winsim_and_tree_sitter_powershell_agree_on_syntax():
    """An independent grammar (tree-sitter-powershell) checks the parser is neither stricter nor
    more lenient than PowerShell on the scripts this collection sends."""
    from tree_sitter import Language, Parser as TreeSitter
    import tree_sitter_powershell
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import remote
    from tests.unit.hostile_corpus import HOSTILE_NAMES
    from winsim.shell.powershell import ParseError, Parser

    grammar = TreeSitter(Language(tree_sitter_powershell.language()))

    def winsim_accepts(script):
        try:
            Parser(script).parse_script()
            return True
        except ParseError:
            return False

    steps = [remote.Step(argv=("netsh", "ipsec", "static", "add", "policy", "name=" + name),
                         undo=(remote.Step(argv=("netsh", "ipsec", "static", "delete", "policy",
                                                 "name=" + name)),))
             for name in HOSTILE_NAMES if name != "--%"]
    engine = [remote.read_script(), remote.write_script(steps)]
    for script in VALID_SCRIPTS + engine:
        assert not grammar.parse(script.encode()).root_node.has_error, script
        assert winsim_accepts(script), script
    for script in INVALID_SCRIPTS:
        assert grammar.parse(script.encode()).root_node.has_error, script
        assert not winsim_accepts(script), script


# -- $input: the lines of a redirected stdin (winsec.ipsec passes secrets so) ----------------------

@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
def test_input_enumerates_stdin_lines_once(powershell):
    host = FakeHost(powershell=powershell)
    script = "$in = @($input)\n$again = @($input)\ntool $in[1] $in.Count $again.Count\nWrite-Output $in[0]"
    result, _ = ps(script, host, raw=True, stdin=b"first line\r\nit's $x `y\nthird\n")
    assert host.argv == ["tool", "it's $x `y", "3", "0"] and result.stdout == "ok\r\nfirst line\r\n"
    result, _ = ps("$in = @($input)\ntool $in.Count $in[0]", host, raw=True, stdin=b"only")
    assert host.argv == ["tool", "1", "only"]       # one line (no final line break) stays an array
    result, _ = ps("$in = @($input)\ntool $in.Count", host, raw=True)
    assert host.argv == ["tool", "0"]               # no stdin: nothing to enumerate


def test_input_is_empty_when_stdin_is_the_script():
    host = FakeHost()
    shell.execute(host, "PowerShell -NoProfile -NonInteractive -Command -", b"$in = @($input)\ntool $in.Count\n")
    assert host.argv == ["tool", "0"]


# -- .NET types, methods, try/catch, Invoke-Expression: what the collection's scripts use --------
# Sources: about_Try_Catch_Finally, about_Methods, about_Type_Accelerators (short names resolve
# with "System." in front), Microsoft docs "Convert.FromBase64String", "Encoding.UTF8",
# "BitConverter.ToString", "SHA1CryptoServiceProvider", "Mutex Class".

import hashlib  # noqa: E402

BOOTSTRAP = (
    "$winsecin = @($input)\n"
    "if ($winsecin.Count -ne 3 -or $winsecin[2] -ne 'winsec-end') { Write-Output '#winsec# stdin lost'; exit 1 }\n"
    "Invoke-Expression ([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($winsecin[0])))\n")
LOCKED_BODY = (
    "$winseclock = New-Object System.Threading.Mutex($false, 'Global\\winsec.ipsec')\n"
    "try { $winsecheld = $winseclock.WaitOne(120000) } catch [System.Threading.AbandonedMutexException] { $winsecheld = $true }\n"
    "if (-not $winsecheld) { Write-Output '#winsec# busy'; exit 3 }\n"
    "$winsecsha = New-Object System.Security.Cryptography.SHA1CryptoServiceProvider\n"
    "$out = tool 'Ünïcode'\n"
    "$text = @($out) -join \"`n\"\n"
    "Write-Output $text\n"
    "$winsecfp_store = [System.BitConverter]::ToString($winsecsha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($text)))\n"
    "Write-Output \"store=$winsecfp_store\"\n"
    "tool $winsecin[1]\n"
    "$winseclock.ReleaseMutex()\n"
    "exit 0\n")


def contract_stdin(body, *secrets, end="winsec-end"):
    lines = [base64.b64encode(body.encode("utf-8")).decode()] + list(secrets) + [end]
    return ("\r\n".join(lines) + "\r\n").encode()


def fingerprint(text):
    return "-".join("%02X" % b for b in hashlib.sha1(text.encode("utf-8")).digest())


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
def test_the_bootstrap_runs_the_body_from_stdin_under_the_lock(powershell):
    host = FakeHost(powershell=powershell, replies={"tool": Result("line 1\r\nlïne 2\r\n", "", 0)})
    result, _ = ps(BOOTSTRAP, host, raw=True, stdin=contract_stdin(LOCKED_BODY, "k e$y`"))
    assert result.rc == 0, errors(result)
    assert result.stdout == "line 1\nlïne 2\r\nstore=%s\r\nline 1\r\nlïne 2\r\n" % fingerprint(
        "line 1\nlïne 2")
    assert [argv for argv, _ in host.calls] == [["tool", "Ünïcode"], ["tool", "k e$y`"]]
    from winsim.shell import mutexes
    assert mutexes.namespace_for(host).held() == {}     # released, and no handle left open


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
@pytest.mark.parametrize("stdin", [b"", b"Zm9v\r\nwinsec-end\r\n", b"Zm9v\r\nk\r\n",
                                   b"Zm9v\r\nk\r\nwinsec-end\r\nmore\r\n"])
def test_the_bootstrap_runs_nothing_when_stdin_did_not_all_arrive(powershell, stdin):
    host = FakeHost(powershell=powershell)
    result, _ = ps(BOOTSTRAP, host, raw=True, stdin=stdin)
    assert (result.stdout, result.rc, host.calls) == ("#winsec# stdin lost\r\n", 1, [])


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
def test_short_type_names_resolve_as_powershell_does(powershell):
    host = FakeHost(powershell=powershell)
    result, _ = ps("[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('aMOk'))\n"
                   "[System.Text.Encoding]::Unicode.GetBytes('A').Count\n"
                   "[BITCONVERTER]::ToString([text.encoding]::utf8.GetBytes('Az'))\n"
                   "[Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes('hä'))\n"
                   "$b = [Convert]::FromBase64String('AAH/')\n$b\n$b.Length", host, raw=True)
    assert result.stdout == "hä\r\n2\r\n41-7A\r\naMOk\r\n0\r\n1\r\n255\r\n3\r\n", errors(result)
    assert result.rc == 0


@pytest.mark.parametrize("powershell, text", [
    ("5.1", "Unable to find type [System.IO.File].\r\nAt line:1 char:1\r\n+ [System.IO.File]::Exists('x')\r\n"
            "+ ~~~~~~~~~~~~~~~~\r\n    + CategoryInfo          : InvalidOperation: (System.IO.File:TypeName) [], "
            "RuntimeException\r\n    + FullyQualifiedErrorId : TypeNotFound\r\n"),
    ("2.0", "Unable to find type [System.IO.File]: make sure that the assembly containing this type is loaded.\r\n"
            "At line:1 char:17\r\n+ [System.IO.File] <<<< ::Exists('x')\r\n    + CategoryInfo          : "
            "InvalidOperation: (System.IO.File:String) [], RuntimeException\r\n"
            "    + FullyQualifiedErrorId : TypeNotFound\r\n")])
def test_a_type_outside_the_contract_is_not_found(powershell, text):
    result, _ = ps("[System.IO.File]::Exists('x')\ntool after", FakeHost(powershell=powershell), raw=True)
    assert errors(result).startswith(text) and result.stdout == "ok\r\n"


@pytest.mark.parametrize("powershell, fqid, message", [
    ("5.1", "FormatException", "Invalid length for a Base-64 char array or string."),
    ("2.0", "DotNetMethodException", "Invalid length for a Base-64 char array.")])
def test_a_method_exception_is_worded_as_powershell_wraps_it(powershell, fqid, message):
    result, host = ps("$x = [Convert]::FromBase64String('abc')\ntool $x", FakeHost(powershell=powershell),
                      raw=True)
    text = errors(result)
    assert text.startswith('Exception calling "FromBase64String" with "1" argument(s): "%s"\r\n' % message)
    assert "NotSpecified: (:) [], MethodInvocationException" in text
    assert "FullyQualifiedErrorId : %s\r\n" % fqid in text
    assert host.argv == ["tool"] and result.rc == 0     # statement-terminating only


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
def test_try_catch_by_type_then_catch_all_and_finally(powershell):
    host = FakeHost(powershell=powershell)
    script = ("try { $m = New-Object System.Threading.Mutex; $m.ReleaseMutex(); tool never }\n"
              "catch [System.Threading.AbandonedMutexException] { tool wrong }\n"
              "catch { tool caught $_.Exception.InnerException.Message }\n"
              "finally { tool finally }\n"
              "try { throw 'boom' } catch [Threading.AbandonedMutexException] { tool wrong } catch { tool \"$_\" }\n"
              "try { tool body; exit 4 } finally { tool cleanup }\ntool not-reached")
    result, _ = ps(script, host, raw=True)
    assert [argv for argv, _ in host.calls] == [
        ["tool", "caught", "Object synchronization method was called from an unsynchronized block of code."],
        ["tool", "finally"], ["tool", "boom"], ["tool", "body"], ["tool", "cleanup"]]
    assert result.rc == 4 and errors(result) == ""


@pytest.mark.parametrize("script, fqid", [
    ("try { tool }", "MissingCatchOrFinally"),
    ("try tool", "MissingTryStatementBlock"),
    ("try { tool } catch [ ] { }", "MissingTypename"),
    ("try { tool } catch { } catch [System.Threading.AbandonedMutexException] { }", "EmptyCatchNotLast"),
    ("$m.WaitOne(1", "MissingEndParenthesisInMethodCall")])
def test_try_and_method_syntax_errors_run_nothing(script, fqid):
    result, host = ps(script, raw=True)
    assert result.rc == 1 and host.calls == [] and "FullyQualifiedErrorId : %s" % fqid in errors(result)


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
def test_invoke_expression_runs_in_this_scope_and_its_exit_ends_the_script(powershell):
    host = FakeHost(powershell=powershell)
    result, _ = ps("$a = 'x'\nInvoke-Expression '$b = $a + 1; tool $b'\ntool $b\n"
                   "$c = iex 'Write-Output c1 c2'\ntool $c.Count\n"
                   "iex \"Write-Output 'early'; exit 5\"\ntool never", host, raw=True)
    assert [argv for argv, _ in host.calls] == [["tool", "x1"], ["tool", "x1"], ["tool", "2"]]
    assert (result.stdout, result.rc) == ("ok\r\nok\r\nok\r\nearly\r\n", 5)


def test_invoke_expression_reports_a_parse_error_in_its_text():
    result, host = ps("Invoke-Expression 'tool (1'\ntool after", raw=True)
    text = errors(result)
    assert text.startswith("Invoke-Expression : At line:1 char:6\r\n+ tool (1\r\n+      ~\r\n"
                           "Missing closing ')' in expression.\r\nAt line:1 char:1\r\n")
    assert "ParserError: (:) [Invoke-Expression], ParseException" in text
    assert "MissingEndParenthesisInExpression,Microsoft.PowerShell.Commands.InvokeExpressionCommand" in text
    assert [argv for argv, _ in host.calls] == [["tool", "after"]]


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
def test_new_object_with_argument_list_and_an_unknown_type(powershell):
    host = FakeHost(powershell=powershell)
    result, _ = ps("$m = New-Object -TypeName Threading.Mutex -ArgumentList $true, 'Local\\x'\n"
                   "tool $m.WaitOne(0)\n$m.ReleaseMutex()\n$m.ReleaseMutex()\n$m.ReleaseMutex()\n"
                   "$s = New-Object System.Security.Cryptography.SHA1CryptoServiceProvider\ntool $s.HashSize\n"
                   "New-Object Net.WebClient", host, raw=True)
    assert [argv for argv, _ in host.calls] == [["tool", "True"], ["tool", "160"]]
    text = errors(result)
    assert "ApplicationException" in text or "DotNetMethodException" in text
    assert ("New-Object : Cannot find type [Net.WebClient]: %s the assembly containing this type is loaded."
            % ("verify that" if powershell == "5.1" else "make sure that")) in text
    assert "InvalidType: (:) [New-Object], PSArgumentException" in text


@pytest.mark.parametrize("script", [
    "'abc'.Trim()", "[Convert]::ToInt32('1')", "[Convert]::FromBase64String",
    "[System.BitConverter]::ToString([byte[]]1, 0)", "$x = [int]'1'",
    "New-Object System.Threading.Mutex($false, 'Global\\a\\b')"])
def test_dotnet_outside_the_subset_fails_loudly(script):
    result, _ = ps(script + "\nexit 0", raw=True)
    assert "outside the" in errors(result) and "subset" in errors(result)


# -- named mutexes: two commands on one host (winsim/shell/mutexes.py; Microsoft docs "Mutex Class",
# "AbandonedMutexException Class", "Mutex Objects") ------------------------------------------------

import threading  # noqa: E402
import time  # noqa: E402


def lock_script(wait_ms, then, release=True):
    return ("$winseclock = New-Object System.Threading.Mutex($false, 'Global\\winsec.ipsec')\n"
            "try { $winsecheld = $winseclock.WaitOne(%d) } catch [System.Threading.AbandonedMutexException] { $winsecheld = $true }\n"
            "if (-not $winsecheld) { Write-Output '#winsec# busy'; exit 3 }\n%s\n%s"
            % (wait_ms, then, "$winseclock.ReleaseMutex()" if release else ""))


class BlockingHost(FakeHost):
    """`block` waits until the test lets it go: a command that is busy on the host."""

    def __init__(self, powershell):
        super().__init__(powershell=powershell)
        self.entered, self.go = threading.Event(), threading.Event()
        self.lock = threading.Lock()

    def run_tool(self, argv, stdin=""):
        if argv[0] == "block":
            self.entered.set()
            assert self.go.wait(30)
        with self.lock:
            return super().run_tool(argv, stdin)

    def tools(self):
        return [" ".join(argv) for argv, _ in self.calls]


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _handles(host, name):
    from winsim.shell import mutexes
    ns = mutexes.namespace_for(host)
    with ns.cond:
        kernel = ns.objects.get(("Global", name))
        return kernel.handles if kernel else 0


def in_thread(host, script):
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=ps(script, host, raw=True)[0]))
    thread.start()
    return thread, box


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
def test_the_mutex_serialises_two_commands_that_run_concurrently(powershell):
    host = BlockingHost(powershell)
    first, first_box = in_thread(host, lock_script(120000, "tool a1\nblock\ntool a2"))
    assert host.entered.wait(10)
    # A second command runs while the first is inside `block` (its own thread), and the lock
    # keeps it out: WaitOne(300) returns False after about 300 ms.
    started = time.monotonic()
    busy, _ = ps(lock_script(300, "tool b"), host, raw=True)
    assert (busy.stdout, busy.rc) == ("#winsec# busy\r\n", 3) and time.monotonic() - started >= 0.3
    third, third_box = in_thread(host, lock_script(120000, "tool c"))
    time.sleep(0.3)
    assert third.is_alive() and host.tools() == ["tool a1"]     # waiting for the first
    host.go.set()
    first.join(10)
    third.join(10)
    assert host.tools() == ["tool a1", "block", "tool a2", "tool c"]
    assert first_box["result"].rc == third_box["result"].rc == 0


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
@pytest.mark.parametrize("waiter", ["contract", "bare"])
def test_a_command_that_ends_holding_the_mutex_abandons_it_to_the_next_waiter(powershell, waiter):
    host = BlockingHost(powershell)
    first, first_box = in_thread(host, lock_script(120000, "block\nexit 2", release=False))
    assert host.entered.wait(10)
    script = lock_script(120000, "tool got it") if waiter == "contract" else (
        "$m = New-Object Threading.Mutex($false, 'Global\\winsec.ipsec')\n$m.WaitOne(120000)\ntool got it")
    second, second_box = in_thread(host, script)
    time.sleep(0.3)
    assert host.tools() == []
    host.go.set()
    first.join(10)
    second.join(10)
    assert first_box["result"].rc == 2 and host.tools() == ["block", "tool got it"]
    text = errors(second_box["result"])
    if waiter == "contract":        # the catch takes the abandoned mutex as held
        assert text == "" and second_box["result"].rc == 0
    else:                           # PowerShell's own error, and the statement after still runs
        assert text.startswith('Exception calling "WaitOne" with "1" argument(s): "The wait '
                               'completed due to an abandoned mutex."\r\n')
        assert "FullyQualifiedErrorId : %s\r\n" % (
            "AbandonedMutexException" if powershell == "5.1" else "DotNetMethodException") in text


def test_an_abandoned_mutex_nobody_holds_a_handle_to_is_gone():
    from winsim.shell import mutexes
    host = FakeHost()
    result, _ = ps(lock_script(1000, "tool inside\nexit 2", release=False), host, raw=True)
    assert result.rc == 2 and mutexes.namespace_for(host).held() == {}
    again, _ = ps(lock_script(1000, "tool again"), host, raw=True)
    assert again.rc == 0 and errors(again) == "" and host.argv == ["tool", "again"]


def test_mutex_names_namespaces_and_recursion():
    from winsim.shell import mutexes
    ns = mutexes.Namespace()
    a, b = ns.session(), ns.session()
    ga = a.open(False, "Global\\x")
    assert ga.wait(0) and ga.wait(0)                    # the owner may wait again (a count)
    assert not b.open(False, "Global\\x").wait(50)      # same object for another command
    assert b.open(False, "x").wait(0)                   # the session namespace is another one
    assert b.open(False, "Global\\X").wait(0)           # names are case-sensitive
    with pytest.raises(Exception, match="unsynchronized"):
        b.open(False, "Global\\x").release()
    ga.release()
    assert not b.open(False, "Global\\x").wait(0)       # still owned once
    ga.release()
    assert b.open(False, "Global\\x").wait(0)
    with pytest.raises(Exception, match="unsynchronized"):
        ga.release()


# -- a terminated command ([MS-WSMV] 2.2.5.6 "Terminates the shell or command"; winsim/shell/process.py) --

@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
def test_a_terminated_command_stops_at_the_next_step_runs_no_finally_and_abandons_its_mutex(powershell):
    from winsim.shell import process
    host = BlockingHost(powershell)
    kill = threading.Event()
    box = {}

    def command():
        with process.running(kill):
            try:
                ps(lock_script(120000, "tool a\ntry { block; tool b } finally { tool fin }"), host, raw=True)
            except process.ProcessKilled:
                box["killed"] = True
    thread = threading.Thread(target=command)
    thread.start()
    assert host.entered.wait(10)
    waiter, waiter_box = in_thread(host, "$m = New-Object Threading.Mutex($false, 'Global\\winsec.ipsec')\n"
                                         "$m.WaitOne(120000)\ntool waiter")
    # The waiter must hold its handle before the kill: an abandoned mutex nobody holds a handle to is
    # gone, and a mutex made afterwards under that name is a new one (without this wait the test failed
    # now and then on a loaded machine).
    assert wait_until(lambda: _handles(host, "winsec.ipsec") == 2)
    kill.set()
    host.go.set()
    thread.join(10)
    waiter.join(10)
    assert box == {"killed": True}
    assert host.tools() == ["tool a", "block", "tool waiter"]    # no `tool b`, no finally block
    assert "abandoned mutex" in errors(waiter_box["result"])


def test_a_terminated_command_stops_waiting_for_a_mutex():
    from winsim.shell import process
    host = BlockingHost("5.1")
    holder, _ = in_thread(host, lock_script(1000, "block"))
    assert host.entered.wait(10)
    kill = threading.Event()
    box = {}

    def command():
        with process.running(kill):
            try:
                ps(lock_script(120000, "tool never"), host, raw=True)
            except process.ProcessKilled:
                box["killed"] = time.monotonic()
    thread = threading.Thread(target=command)
    thread.start()
    time.sleep(0.3)
    killed_at = time.monotonic()
    kill.set()
    thread.join(10)
    host.go.set()
    holder.join(10)
    assert box["killed"] - killed_at < 1 and host.tools() == ["block"]


@pytest.mark.parametrize("powershell", ["5.1", "2.0"])
def test_the_error_record_in_a_catch_block(powershell):
    result, host = ps("try { [Convert]::FromBase64String('a') } catch {\n$_\nWrite-Output \"text=$_\"\n"
                      "tool $_.FullyQualifiedErrorId\n}", FakeHost(powershell=powershell), raw=True)
    fqid = "FormatException" if powershell == "5.1" else "DotNetMethodException"
    message = ('Exception calling "FromBase64String" with "1" argument(s): "Invalid length for a Base-64 char '
               'array%s."' % (" or string" if powershell == "5.1" else ""))
    assert result.stdout.startswith(message + "\r\nAt line:1 char:")     # written as the error view
    assert "FullyQualifiedErrorId : %s\r\n" % fqid in result.stdout
    assert result.stdout.endswith(" \r\ntext=%s\r\nok\r\n" % message)              # its text is the message
    assert host.argv == ["tool", fqid] and errors(result) == ""
