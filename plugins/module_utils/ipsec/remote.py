# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
r"""Commands -> one PowerShell script per round trip; its transcript -> sections and step results.

Two scripts exist. The *read* script prints everything a task needs, each part between markers:
the OS version, the IPsec registry store, the PolicyAgent service, the dynamic filters and the
NoDefaultExempt value, then a `fingerprint` section: one `name=HEX` line per section, the SHA-1
of the section's text as the host itself computed it (guard.py compares them). The *write* script
runs a batch of commands, stops at the first failure, undoes the steps already done (newest
first), and then prints the read sections again so that the new state is verified in the same trip.

Both hold the host-side lock, the named mutex `Global\winsec.ipsec`, across all they do, so two
controllers never interleave on one host (Microsoft docs, "Mutex Class": a mutex whose owner
ended without releasing it raises AbandonedMutexException in the next waiter, which then owns it).

A write is ONE WinRM command whatever its size: the command line holds a short bootstrap, and the
script body travels on the command's standard input (line 0: base64 of its UTF-8 text; then the
secret values; last the sentinel `winsec-end`). A command whose standard input did not fully arrive
runs nothing; one that started runs to its end on the host, so a lost connection leaves the host
old or new. A read is short and goes on the command line itself.

Both scripts stay inside the PowerShell subset every target can run (Windows PowerShell 2.0 on
2003/XP, 5.1 later, and winsim): native commands, variables, `if`, here-strings, Write-Output,
Set-Content/Remove-Item, and the few .NET calls named where they are used. No functions, loops or
pipelines. Ansible strips every line and drops blank lines before it encodes a command line
(ansible/plugins/shell/powershell.py `_encode_script`), so nothing here depends on indentation or
on blank lines.

Secrets (pre-shared keys) never stand in a script: Ansible's connections log the command line
they send (winrm at -vvvvv, psrp and ssh at -vvv). A step marks the argv elements and netsh
script lines that carry one (`Step.hidden`); the script refers to them as `$winsecin[i]`, and
the values travel as lines of the command's standard input (`Script.stdin`), which the bootstrap
reads once, first, with `$winsecin = @($input)`.

Standard library only.
"""
from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from . import directory
from .model import IPsecError, OsInfo, ValidationError
from .quoting import powershell_literal, powershell_native_args, powershell_native_values

MARK = "#winsec#"
IPSEC_KEY = r"HKLM\SOFTWARE\Policies\Microsoft\Windows\IPSec"
OS_KEY = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
# NoDefaultExempt moved with the service: IPSEC on 2000/XP/2003 (KB 811832, KB 810207), PolicyAgent on
# Vista+ (docs/windows-tools.md, "Default exemptions").
EXEMPT_KEY_LEGACY = r"HKLM\SYSTEM\CurrentControlSet\Services\IPSEC"
EXEMPT_KEY_MODERN = r"HKLM\SYSTEM\CurrentControlSet\Services\PolicyAgent"

# The read section listing the dynamic main-mode policies of a netsh host.
MMPOLICY_SECTION = "mmpolicies-netsh"
# `CurrentVersion` of each Windows generation (Microsoft "Operating System Version" table).
_LEGACY_VERSIONS = {"5.0": ("2000", "ipsecpol"), "5.1": ("xp", "ipseccmd"), "5.2": ("2003", "netsh")}

# Texts by which a missing tool shows itself. PowerShell: CommandNotFoundException; cmd.exe: exit
# 9009; netsh without an `ipsec` context (XP): "The following command was not found" [I, English].
_MISSING_TOOL = re.compile(r"is not recognized as|CommandNotFoundException|command was not found",
                           re.IGNORECASE)
_NETSH_ERROR = re.compile(r"ERR IPsec\[", re.IGNORECASE)
# Tools are called by bare name (found on PATH, as an admin types them); nothing else may stand there.
_PROGRAM = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


# --------------------------------------------------------------------------------------------
# Script building
# --------------------------------------------------------------------------------------------

# PowerShell enumerates a redirected standard input's lines through `$input` when it runs
# -EncodedCommand (about_Automatic_Variables, $input; Ansible's own bootstrap_wrapper.ps1 reads its
# payload so on 5.1; [I] 2.0 assumed the same). `@(...)` keeps one line an array. The enumerator
# runs once: the bootstrap is its first and only reader.
STDIN_VAR = "$winsecin"
STDIN_HEADER = "%s = @($input)" % STDIN_VAR
# The last stdin line: a body that arrived without it (a connection cut mid-stream) runs nothing.
STDIN_END = "winsec-end"
# Standard input is decoded with the console's input code page, which the controller does not
# know; printable ASCII reads the same in all of them (the body is base64, the keys are checked).
_STDIN_SAFE = re.compile(r"^[\x20-\x7e]*$")
# Printed, and nothing run, when the stdin lines did not all arrive (a dropped line would pass
# $null, which PowerShell drops from a native command line: a rule would be written without its
# key). Arrays have Count in 2.0 too (an alias of Length, types.ps1xml).
STDIN_LOST = "%s stdin lost" % MARK
# A sane bound on a body (UTF-8 bytes): Ansible's winrm connection sends stdin in Send requests of
# 200000 bytes each (ansible/plugins/connection/winrm.py `_wrapper_payload_stream`); a batch of
# this size is thousands of commands, more than one task should hold.
MAX_BODY = 2 * 1024 * 1024

# The host-side lock (Microsoft docs, "Mutex Class"; `Global\` names one mutex for every session of
# the host, "Kernel object namespaces"). A waiter gets AbandonedMutexException, and the mutex,
# when the owner's process ended without releasing it (a WinRM shell killed mid-command).
LOCK_NAME = "Global\\winsec.ipsec"
LOCK_WAIT_MS = 120000
BUSY = "%s busy" % MARK
BUSY_EXIT = 3


class Script(str):
    """A PowerShell script as sent: the command text, the lines it reads from standard input
    (`stdin`), and the whole script (`body`: equal to the text when it has no stdin)."""
    stdin: Tuple[str, ...] = ()
    body: str = ""
    kind: str = "read"         # 'read' or 'write' (confirm.py notes when a write was sent)
    # After a lost request, how long the controller waits for a write to end on the host before it
    # calls the host unreachable (plugins/plugin_utils/host_command.py); commit-confirmed shortens it (confirm.py).
    wait_limit: float = 180.0


def bootstrap(count: int) -> str:
    """The command line of a script whose body and `count - 2` secrets come on stdin."""
    last = count - 1
    return "\n".join([
        STDIN_HEADER,
        "if (%s.Count -ne %d -or %s[%d] -ne '%s') { Write-Output '%s'; exit 1 }"
        % (STDIN_VAR, count, STDIN_VAR, last, STDIN_END, STDIN_LOST),
        "Invoke-Expression ([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String(%s[0])))"
        % STDIN_VAR,
    ]) + "\n"


def plain_script(lines: Sequence[str], kind: str = "read") -> Script:
    """`lines` as a script that travels whole on the command line (no stdin)."""
    script = Script("\n".join(lines) + "\n")
    script.body, script.kind = str(script), kind
    return script


def make_script(lines: Sequence[str], secrets: Sequence[str] = (), kind: str = "write") -> Script:
    """`lines` as a script whose body (and `secrets`) travel on stdin behind a short bootstrap."""
    body = "\n".join(lines) + "\n"
    data = body.encode("utf-8")
    if len(data) > MAX_BODY:
        raise IPsecError("the write batch is %d bytes, more than the %d one command may carry: split the change "
                         "over several tasks" % (len(data), MAX_BODY))
    stdin = (base64.b64encode(data).decode("ascii"),) + tuple(secrets) + (STDIN_END,)
    script = Script(bootstrap(len(stdin)))
    script.stdin, script.body, script.kind = stdin, body, kind
    return script


def stdin_lost(output: str) -> bool:
    """Whether a script stopped because its standard input did not arrive."""
    return any(line.rstrip() == STDIN_LOST for line in output.splitlines())


def busy(output: str) -> bool:
    """Whether a script gave up waiting for the host-side lock."""
    return any(line.rstrip() == BUSY for line in output.splitlines())


def lock_lines() -> List[str]:
    """Take the host-side lock, or print BUSY and stop after LOCK_WAIT_MS (the contract's form)."""
    return [
        "$winseclock = New-Object System.Threading.Mutex($false, '%s')" % LOCK_NAME,
        "try { $winsecheld = $winseclock.WaitOne(%d) } catch [System.Threading.AbandonedMutexException] "
        "{ $winsecheld = $true }" % LOCK_WAIT_MS,
        "if (-not $winsecheld) { Write-Output '%s'; exit %d }" % (BUSY, BUSY_EXIT),
    ]


def unlock_lines() -> List[str]:
    return ["$winseclock.ReleaseMutex()"]


class Stdin:
    """Collects the secret values a script reads from stdin; `ref` gives the expression for one.
    Line 0 of stdin is the body, so the first secret is `$winsecin[1]`."""

    def __init__(self, values: Sequence[str] = ()):
        self.values = list(values)

    def ref(self, value: str) -> str:
        if not _STDIN_SAFE.match(value):
            # never echo the value: it is a secret
            raise IPsecError("a pre-shared key may hold printable ASCII characters only: it reaches the host on "
                             "standard input, which Windows decodes with the console's code page")
        self.values.append(value)
        return "%s[%d]" % (STDIN_VAR, len(self.values))


def set_content_lines(path: str, lines: Sequence[str], hidden: Sequence[str] = (),
                      stdin: Optional[Stdin] = None) -> str:
    """A Set-Content statement writing `lines` to `path` (a double-quoted PowerShell path), each a
    single-quoted literal, or the stdin reference for a line in `hidden`."""
    if any(line in hidden for line in lines) and stdin is None:
        raise IPsecError("internal: a file line holds a secret but the script reads no stdin")
    values = [stdin.ref(line) if line in hidden else powershell_literal(line) for line in lines]
    return 'Set-Content -LiteralPath "%s" -Value %s' % (path, ", ".join(values))


def _say(text: str) -> str:
    """A marker line; single-quoted so PowerShell expands nothing in it."""
    if "'" in text or "\n" in text:
        raise IPsecError("internal: marker text %r cannot be single-quoted" % text)
    return "Write-Output '%s %s'" % (MARK, text)


# Every read section, in the order the read script prints them (guard.py scopes a precheck by them).
SECTIONS = ("os", "store", "policyagent", "exempt", "dynamic-netsh", MMPOLICY_SECTION, "dynamic-ipseccmd",
            "directory", "directory-gpos", "startup-file", "startup-task")
# reapply_at_startup's batch file and scheduled task (startup.py), read only for the tasks that manage them.
STARTUP_FILE = "%SystemRoot%\\winsec-reapply-dynamic.cmd"
STARTUP_TASK = "winsec-reapply-dynamic"
STARTUP_SECTIONS = ("startup-file", "startup-task")
FINGERPRINT = "fingerprint"
# Fingerprints are SHA-1 of the section's text, computed on the host (the controller only echoes
# them, so code pages never matter): Microsoft docs "SHA1CryptoServiceProvider Class" (.NET 2.0 on,
# FIPS-validated; here change detection, not security), "Encoding.UTF8", "BitConverter.ToString".
_SHA = "$winsecsha = New-Object System.Security.Cryptography.SHA1CryptoServiceProvider"


def fingerprint_var(name: str) -> str:
    """The script variable holding a section's fingerprint."""
    return "$winsecfp_" + name.replace("-", "_")


def _section_tail(name: str, emit: bool) -> List[str]:
    """After a section's command left its output in $out and exit code in $rc: its text (lines
    joined by LF), printed with its end marker when `emit`, and its fingerprint."""
    lines = ['$text = @($out) -join "`n"']
    if emit:
        lines += ["Write-Output $text", 'Write-Output "%s end %s rc=$rc"' % (MARK, name)]
    return lines + ["%s = [System.BitConverter]::ToString($winsecsha.ComputeHash("
                    "[System.Text.Encoding]::UTF8.GetBytes($text)))" % fingerprint_var(name)]


def _section(name: str, command: str, emit: bool = True) -> List[str]:
    """Run one read command; print its output and exit code between markers (unless not `emit`)."""
    return (([_say("begin " + name)] if emit else [])
            + ["$out = %s 2>&1" % command, "$rc = $LASTEXITCODE"] + _section_tail(name, emit))


def _export_section(name: str, args: Sequence[str], emit: bool = True) -> List[str]:
    """Run `ldifde -f FILE args` (through cmd /c: a missing ldifde is exit 9009 in any language),
    then print the exported file and remove it; the section's rc is ldifde's."""
    path = "$env:TEMP\\winsec-%s.ldf" % secrets.token_hex(8)
    return (([_say("begin " + name)] if emit else []) + [
        '$ldf = "%s"' % path,
        "$out = cmd /c ldifde -f $ldf %s 2>&1" % powershell_native_args(list(args)),
        "$rc = $LASTEXITCODE",
        "if ($rc -eq 0) {",
        "$out = Get-Content -LiteralPath $ldf 2>&1",
        "Remove-Item -LiteralPath $ldf",
        "}"] + _section_tail(name, emit))


def directory_lines(domain: str, emit: bool = True) -> List[str]:
    """The domain store's sections: its IPsec objects and its GPOs (directory.py)."""
    return (_export_section("directory", directory.export_args(domain, "objects"), emit)
            + _export_section("directory-gpos", directory.export_args(domain, "gpos"), emit))


def fingerprint_lines() -> List[str]:
    """The `fingerprint` section: `name=HEX` for every section that ran (the others print `name=`)."""
    return ([_say("begin " + FINGERPRINT)]
            + ['Write-Output "%s=%s"' % (name, fingerprint_var(name)) for name in SECTIONS]
            + [_say("end %s rc=0" % FINGERPRINT)])


def read_lines(dialect: str = "", directory: Optional[str] = None, emit: bool = True,
               only: Optional[Sequence[str]] = None, startup: bool = False) -> List[str]:
    """The read sections as script lines (shared by the read and the write script).

    `dialect` forces which tool lists the dynamic filters (and so proves that tool exists);
    without it the script picks by the OS version it just read: XP has ipseccmd, 2003 and later
    have `netsh ipsec dynamic` (docs/windows-tools.md, "Tools per Windows version"). `directory` (a domain name, or '' for the
    host's own domain) adds the domain store's sections; None leaves them out. Every section
    leaves its fingerprint in fingerprint_var(name). `emit` False prints nothing (guard.py's
    precheck); `only` runs just those sections (the OS version always: the others depend on it);
    with `emit` the fingerprint section follows. `startup` adds the startup task's sections (the
    file's text, `schtasks /query` of the task; `only` names them itself).
    """
    def wanted(name):
        if name in STARTUP_SECTIONS and only is None:
            return startup
        return only is None or name in only

    lines = [_SHA] + ["%s = ''" % fingerprint_var(name) for name in SECTIONS]
    lines += _section("os", 'reg query "%s"' % OS_KEY, emit)
    lines += ["$osout = $out"]
    if wanted("store"):
        lines += _section("store", 'reg query "%s" /s' % IPSEC_KEY, emit)
    # `sc` alone is PowerShell's alias of Set-Content: the service tool must be named sc.exe.
    if wanted("policyagent"):
        lines += _section("policyagent", "sc.exe query PolicyAgent", emit)
    # 5.x (2000/XP/2003) keep NoDefaultExempt under Services\IPSEC; 6.x and later under PolicyAgent.
    if wanted("exempt"):
        lines += ["if ($osout -match 'CurrentVersion\\s+REG_SZ\\s+5\\.') {"]
        lines += _section("exempt", 'reg query "%s" /v NoDefaultExempt' % EXEMPT_KEY_LEGACY, emit)
        lines += ["} else {"]
        lines += _section("exempt", 'reg query "%s" /v NoDefaultExempt' % EXEMPT_KEY_MODERN, emit)
        lines += ["}"]
    # Through cmd /c so that a missing tool shows as exit 9009 in any display language. netsh hosts
    # also list the main-mode policies: winsec's own may exist with no rule using it (MMPOLICY_SECTION).
    netsh = ((_section("dynamic-netsh", "cmd /c netsh ipsec dynamic show rule", emit)
              if wanted("dynamic-netsh") else [])
             + (_section(MMPOLICY_SECTION, "cmd /c netsh ipsec dynamic show mmpolicy all", emit)
                if wanted(MMPOLICY_SECTION) else []))
    ipseccmd = (_section("dynamic-ipseccmd", "cmd /c ipseccmd show filters", emit)
                if wanted("dynamic-ipseccmd") else [])
    if dialect == "netsh":
        lines += netsh
    elif dialect == "ipseccmd":
        lines += ipseccmd
    elif netsh or ipseccmd:
        lines += ["if ($osout -match 'CurrentVersion\\s+REG_SZ\\s+5\\.1') {"] + ipseccmd
        lines += ["} else {"] + netsh + ["}"]
    if directory is not None and (wanted("directory") or wanted("directory-gpos")):
        lines += directory_lines(directory, emit)
    # Through cmd /c: `type` of a missing file and `schtasks /query` of a missing task exit 1.
    if wanted("startup-file"):
        lines += _section("startup-file", 'cmd /c type "%s"' % STARTUP_FILE, emit)
    if wanted("startup-task"):
        lines += _section("startup-task", "cmd /c schtasks /query /tn %s" % STARTUP_TASK, emit)
    return lines + (fingerprint_lines() if emit else [])


def read_script(dialect: str = "", directory: Optional[str] = None, startup: bool = False) -> Script:
    """The read script, holding the host-side lock; short enough for the command line."""
    return plain_script(lock_lines() + read_lines(dialect, directory, startup=startup) + unlock_lines()
                        + ["exit 0"])


@dataclass(frozen=True)
class Step:
    """One command of a write batch and the commands that undo it (run newest first)."""
    argv: Tuple[str, ...]
    script: str = ""                    # netsh -f script body (domain store); argv then runs it
    undo: Tuple["Step", ...] = ()
    display: str = ""                   # redacted, for messages
    hidden: Tuple[str, ...] = field(default=(), repr=False)     # argv elements and script lines with a secret
    # Instead of a tool: write a file (path as PowerShell takes it, e.g. "$env:SystemRoot\\x.cmd"; its
    # lines, or None to delete it). A failure to write is the step's failure (rc 1), as a tool's.
    file: Optional[Tuple[str, Optional[Tuple[str, ...]]]] = None


def _command_lines(step: Step, var: str = "$out", stdin: Optional[Stdin] = None) -> List[str]:
    """Script lines that run one step and leave its output in `var` and its exit code in $rc.

    A step with a `script` (the netsh domain store: `set store` holds only within one netsh
    session: docs/windows-tools.md, "Store selection") is written to a temporary file, run with `netsh -f`, then removed.
    Hidden argv elements and script lines come from `stdin`.
    """
    if step.hidden and stdin is None:
        raise IPsecError("internal: step %r holds a secret but the script reads no stdin" % step.display)
    if step.file is not None:
        return _file_lines(step, var, stdin)
    if not step.script:
        program = step.argv[0]
        if not _PROGRAM.match(program):
            raise IPsecError("internal: program name %r is not a bare tool name" % program)
        try:
            values = powershell_native_values(list(step.argv[1:]))
        except ValidationError:
            if not step.hidden:
                raise
            raise IPsecError("%s: a value cannot be passed intact through Windows PowerShell 5.1 (a space or tab "
                             "after an odd number of double quotes)" % step.display) from None    # not the key
        args = " ".join(stdin.ref(value) if arg in step.hidden else powershell_literal(value)
                        for arg, value in zip(step.argv[1:], values))
        return ["%s = %s %s 2>&1" % (var, program, args), "$rc = $LASTEXITCODE"]
    path = "$env:TEMP\\winsec-%s.txt" % secrets.token_hex(8)
    body = [ln.strip() for ln in step.script.splitlines() if ln.strip()]
    return [set_content_lines(path, body, [h.strip() for h in step.hidden], stdin),
            '%s = netsh -f "%s" 2>&1' % (var, path), "$rc = $LASTEXITCODE",
            'Remove-Item -LiteralPath "%s"' % path]


def _file_lines(step: Step, var: str, stdin: Optional[Stdin]) -> List[str]:
    """A file step: Set-Content (or Remove-Item) that stops on an error, caught as the step's failure
    (about_Try_Catch_Finally; -ErrorAction Stop makes the cmdlet's error terminating)."""
    path, lines = step.file
    if lines is None:
        command = 'Remove-Item -LiteralPath "%s" -ErrorAction Stop' % path
    else:
        command = set_content_lines(path, lines, step.hidden, stdin) + " -ErrorAction Stop"
    return ["%s = ''" % var, "$rc = 0", "try {", command, "} catch {", '%s = "$_"' % var, "$rc = 1", "}"]


def _step_lines(step: Step, number: int, stdin: Optional[Stdin] = None) -> List[str]:
    """Run one step unless an earlier one failed; on failure record its number and output."""
    return (["if ($failed -eq 0) {"] + _command_lines(step, stdin=stdin) + [
        "if ($rc -ne 0 -or $out -match 'ERR IPsec\\[') {",
        "$failed = %d" % number,
        'Write-Output "%s failed %d rc=$rc"' % (MARK, number),
        "Write-Output $out",
        _say("end failed"),
        "} else {",
        _say("done %d" % number),
        "}",
        "}",
    ])


def _undo_lines(step: Step, number: int, stdin: Optional[Stdin] = None) -> List[str]:
    """Undo step `number` when a later step failed (`$failed` holds the failed step's number)."""
    if not step.undo:
        return []
    lines = ["if ($failed -gt %d) {" % number]
    for index, undo in enumerate(step.undo, 1):
        lines += [_say("undo %d.%d" % (number, index))]
        lines += _command_lines(undo, "$uout", stdin)
        lines += ['Write-Output "%s undone %d.%d rc=$rc"' % (MARK, number, index),
                  "Write-Output $uout", _say("end undone")]
    return lines + ["}"]


def write_lines(steps: Sequence[Step], first: int = 1, precheck: Sequence[str] = (),
                stdin: Optional[Stdin] = None, prelude: Sequence[str] = ()) -> List[str]:
    """Run `steps` numbered from `first`; stop at the first failure and undo the earlier ones.

    `$failed` holds the number of the failed step (0: none). Every step runs only while nothing
    failed; after the batch, the undo of step i runs when a later step failed, newest first.
    `precheck` lines run first and may set `$failed = -1` so that nothing runs (guard.py);
    `prelude` lines run after it, only when it passed (confirm.py's undo batch file).
    Steps with secrets need `stdin`, which collects their values.
    """
    lines = ["$failed = 0"] + list(precheck)
    if prelude:
        lines += ["if ($failed -eq 0) {"] + list(prelude) + ["}"]
    for number, step in enumerate(steps, first):
        lines += _step_lines(step, number, stdin)
    for number in range(first + len(steps) - 1, first - 1, -1):
        lines += _undo_lines(steps[number - first], number, stdin)
    return lines


def write_script(steps: Sequence[Step], verify: bool = True, dialect: str = "", precheck: Sequence[str] = (),
                 directory: Optional[str] = None, prelude=None, startup: bool = False) -> Script:
    """The whole batch as one write script (one WinRM command): lock, precheck, the steps with
    their undo, the read-back, unlock. Its secrets are in `.stdin`, never in the text.
    `prelude(stdin) -> lines` adds lines run after a passed precheck (confirm.py)."""
    stdin = Stdin()
    lines = lock_lines() + write_lines(steps, 1, precheck, stdin, prelude(stdin) if prelude else ())
    if verify:
        lines += read_lines(dialect, directory, startup=startup)
    return make_script(lines + unlock_lines() + ["exit 0"], stdin.values)


def undo_steps(steps: Sequence[Step]) -> List[Step]:
    """The undo commands of fully completed steps, newest first (confirm.py's undo batch; the
    same order as write_lines). Anything with an `undo` tuple will do: a dialect's Commands too."""
    found: List[Step] = []
    for step in reversed(list(steps)):
        found.extend(step.undo)
    return found


# --------------------------------------------------------------------------------------------
# Transcript parsing
# --------------------------------------------------------------------------------------------

@dataclass
class Section:
    name: str
    text: str
    rc: Optional[int]


@dataclass
class Transcript:
    sections: Dict[str, Section] = field(default_factory=dict)
    done: List[int] = field(default_factory=list)        # steps that succeeded
    failed: Optional[Tuple[int, Optional[int], str]] = None   # (step, rc, output)
    undone: List[Tuple[str, Optional[int], str]] = field(default_factory=list)
    busy: bool = False          # the script gave up waiting for the host-side lock; nothing ran

    @property
    def fingerprint(self) -> Dict[str, str]:
        """{section: HEX} as the host printed them (sections that did not run are left out)."""
        section = self.sections.get(FINGERPRINT)
        return parse_fingerprints(section.text) if section is not None else {}

    @property
    def undo_failed(self) -> List[Tuple[str, Optional[int], str]]:
        return [u for u in self.undone if u[1] != 0 or _NETSH_ERROR.search(u[2])]


_BEGIN = re.compile(r"^%s begin (\S+)$" % MARK)
_END = re.compile(r"^%s end (\S+) rc=(-?\d*)$" % MARK)
_DONE = re.compile(r"^%s done (\d+)$" % MARK)
_FAILED = re.compile(r"^%s failed (\d+) rc=(-?\d*)$" % MARK)
_UNDONE = re.compile(r"^%s undone (\d+\.\d+) rc=(-?\d*)$" % MARK)


def parse_fingerprints(text: str) -> Dict[str, str]:
    """`name=HEX` lines -> {name: HEX}, empty values left out."""
    found = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition("=")
        if name and value:
            found[name] = value
    return found


def _rc(text: str) -> Optional[int]:
    return int(text) if text else None


def parse_transcript(text: str) -> Transcript:
    """Split the output of a read or write script at its markers.

    A marker line must stand alone; lines between `begin`/`end` belong to that section (a
    section's own output can never fake a marker that matters, because the text inside is not
    scanned for markers until its `end` arrives).
    """
    out = Transcript()
    open_name: Optional[str] = None
    body: List[str] = []
    block: Optional[Tuple[str, object]] = None     # ('failed', (step, rc)) or ('undone', (id, rc))
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if open_name is not None:
            match = _END.match(line)
            if match and match.group(1) == open_name:
                out.sections[open_name] = Section(open_name, "\n".join(body), _rc(match.group(2)))
                open_name, body = None, []
            else:
                body.append(raw)
            continue
        if block is not None:
            if line in ("%s end failed" % MARK, "%s end undone" % MARK):
                kind, (ident, rc) = block
                if kind == "failed":
                    out.failed = (int(ident), rc, "\n".join(body))
                else:
                    out.undone.append((ident, rc, "\n".join(body)))
                block, body = None, []
            else:
                body.append(raw)
            continue
        match = _BEGIN.match(line)
        if match:
            open_name, body = match.group(1), []
            continue
        if line == BUSY:
            out.busy = True
            continue
        match = _DONE.match(line)
        if match:
            out.done.append(int(match.group(1)))
            continue
        match = _FAILED.match(line)
        if match:
            block, body = ("failed", (match.group(1), _rc(match.group(2)))), []
            continue
        match = _UNDONE.match(line)
        if match:
            block, body = ("undone", (match.group(1), _rc(match.group(2)))), []
    return out


# --------------------------------------------------------------------------------------------
# Sections -> facts
# --------------------------------------------------------------------------------------------

def reg_values(text: str) -> Dict[str, Tuple[str, str]]:
    """`reg query` value lines -> {name: (type, data)}.

    Vista+ reg.exe separates with four spaces, XP/2003 reg.exe with tabs [I, both tolerated].
    """
    values: Dict[str, Tuple[str, str]] = {}
    for line in text.splitlines():
        match = re.match(r"^\s+(.*?)(?:\t+|\s{2,})(REG_[A-Z_]+)(?:(?:\t+|\s{2,})(.*))?$", line)
        if match:
            values[match.group(1).strip()] = (match.group(2), (match.group(3) or "").strip())
    return values


def os_info(section: Optional[Section]) -> OsInfo:
    """ProductName / CurrentVersion / CurrentBuildNumber -> generation and dialect."""
    if section is None or section.rc not in (0, None):
        raise IPsecError("could not read the Windows version (reg query \"%s\" failed: %s)"
                         % (OS_KEY, (section.text.strip() if section else "no output")[:300]))
    values = reg_values(section.text)
    version = values.get("CurrentVersion", ("", ""))[1]
    build = values.get("CurrentBuildNumber", ("", ""))[1]
    caption = values.get("ProductName", ("", ""))[1]
    if not re.match(r"^\d+\.\d+$", version):
        raise IPsecError("could not read the Windows version: CurrentVersion %r not found in "
                         "reg query output" % version)
    generation, dialect = _LEGACY_VERSIONS.get(version, ("modern", "netsh"))
    if version == "6.1" and "2008 R2" in caption:
        generation = "2008r2"
    full = "%s.%s" % (version, build) if build else version
    return OsInfo(generation=generation, version=full, dialect=dialect, caption=caption)


def policyagent_state(section: Optional[Section]) -> str:
    """`sc query` STATE line -> 'running' | 'stopped' | other lower-case state | '' unknown.

    The numeric state is language-independent (SERVICE_STATUS dwCurrentState: 1 stopped,
    2 start pending, 3 stop pending, 4 running; Microsoft docs).
    """
    if section is None:
        return ""
    match = re.search(r"STATE\s*:\s*(\d+)", section.text)
    if not match:
        return ""
    return {1: "stopped", 2: "start_pending", 3: "stop_pending", 4: "running",
            5: "continue_pending", 6: "pause_pending", 7: "paused"}.get(int(match.group(1)), "")


def no_default_exempt(section: Optional[Section]) -> Optional[int]:
    """The NoDefaultExempt DWORD, None when absent (reg query fails on a missing value)."""
    if section is None or section.rc not in (0, None):
        return None
    value = reg_values(section.text).get("NoDefaultExempt")
    if not value:
        return None
    try:
        return int(value[1], 0)
    except ValueError:
        raise IPsecError("NoDefaultExempt: unreadable value %r" % value[1])


def store_text(section: Optional[Section]) -> str:
    """The `reg query /s` text of the IPsec key; '' when the key does not exist (empty store)."""
    if section is None:
        raise IPsecError("the read script printed no store section")
    if section.rc in (0, None):
        return section.text
    if re.search(r"unable to find|ERROR:", section.text):
        return ""      # reg.exe: "ERROR: The system was unable to find the specified registry key"
    raise IPsecError("reg query \"%s\" /s failed (rc=%s): %s"
                     % (IPSEC_KEY, section.rc, section.text.strip()[:300]))


def tool_missing(section: Optional[Section]) -> bool:
    if section is None:
        return False
    return section.rc == 9009 or bool(_MISSING_TOOL.search(section.text))


def mmpolicy_section(transcript: Transcript) -> Optional[Section]:
    """The `netsh ipsec dynamic show mmpolicy all` section (netsh hosts only)."""
    return transcript.sections.get(MMPOLICY_SECTION)


def dynamic_section(transcript: Transcript) -> Optional[Section]:
    for name in ("dynamic-netsh", "dynamic-ipseccmd"):
        if name in transcript.sections:
            return transcript.sections[name]
    return None


__all__ = [
    "MARK", "MAX_BODY", "Step", "Script", "Stdin", "STDIN_HEADER", "STDIN_END", "STDIN_LOST",
    "make_script", "plain_script", "bootstrap", "stdin_lost", "busy", "lock_lines", "unlock_lines", "LOCK_NAME",
    "SECTIONS", "FINGERPRINT", "fingerprint_var", "parse_fingerprints",
    "set_content_lines", "Section", "Transcript", "read_lines", "read_script",
    "write_lines", "write_script", "undo_steps",
    "parse_transcript", "reg_values", "os_info", "policyagent_state", "no_default_exempt",
    "store_text", "tool_missing", "dynamic_section", "mmpolicy_section", "MMPOLICY_SECTION",
    "STARTUP_FILE", "STARTUP_TASK", "STARTUP_SECTIONS",
]
