# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Commands -> one PowerShell script per round trip; its transcript -> sections and step results.

Two scripts exist. The *read* script prints everything a task needs, each part between markers:
the OS version, the IPsec registry store, the PolicyAgent service, the dynamic filters and the
NoDefaultExempt value. The *write* script runs a batch of commands, stops at the first failure,
undoes the steps already done (newest first), and then prints the read sections again so that the
new state is verified in the same trip.

Both scripts stay inside the PowerShell subset every target can run (Windows PowerShell 2.0 on
2003/XP, 5.1 later, and winsim): native commands, variables, `if`, here-strings, Write-Output,
Set-Content/Remove-Item. No functions, loops, pipelines or .NET calls. Ansible strips every line
and drops blank lines before it encodes a script (ansible/plugins/shell/powershell.py
`_encode_script`), so nothing here depends on indentation or on blank lines.

Secrets (pre-shared keys) never stand in a script: Ansible's connections log the command line
they send (winrm at -vvvvv, psrp and ssh at -vvv). A step marks the argv elements and netsh
script lines that carry one (`Step.hidden`); the script refers to them as `$winsecin[i]`, and
the values travel as the lines of the command's standard input (`Script.stdin`), which the script
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
# NoDefaultExempt moved with the service: SYNTAX.md 5.2 (IPSEC on 2000/XP/2003, PolicyAgent on Vista+).
EXEMPT_KEY_LEGACY = r"HKLM\SYSTEM\CurrentControlSet\Services\IPSEC"
EXEMPT_KEY_MODERN = r"HKLM\SYSTEM\CurrentControlSet\Services\PolicyAgent"

# CreateProcess takes at most 32767 characters including the terminating NUL (Microsoft docs,
# CreateProcessW lpCommandLine); WinRM starts the shell command through it.
MAX_COMMAND_LINE = 32766
# What Ansible's PowerShell shell plugin puts before the base64 script (`_common_args`).
POWERSHELL_PREFIX = ("PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted "
                     "-EncodedCommand ")

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
# runs once: the line is the script's first and only reader.
STDIN_VAR = "$winsecin"
STDIN_HEADER = "%s = @($input)" % STDIN_VAR
# Standard input is decoded with the console's input code page, which the controller does not
# know; printable ASCII reads the same in all of them.
_STDIN_SAFE = re.compile(r"^[\x20-\x7e]*$")
# Printed, and nothing run, when fewer lines arrived than the script needs (a connection that drops
# stdin would otherwise pass $null, which PowerShell drops from a native command line: a rule
# would be written without its key). Arrays have Count in 2.0 too (an alias of Length, types.ps1xml).
STDIN_LOST = "%s stdin lost" % MARK


class Script(str):
    """A PowerShell script (the text) and the lines it reads from standard input (`stdin`)."""
    stdin: Tuple[str, ...] = ()


def _stdin_lines(count: int) -> List[str]:
    return [STDIN_HEADER, "if (%s.Count -lt %d) {" % (STDIN_VAR, count), "Write-Output '%s'" % STDIN_LOST,
            "exit 1", "}"]


def make_script(lines: Sequence[str], stdin: Sequence[str] = ()) -> Script:
    """`lines` as one script; with `stdin` values it first reads them (and stops if they are missing)."""
    script = Script("\n".join((_stdin_lines(len(stdin)) if stdin else []) + list(lines)) + "\n")
    script.stdin = tuple(stdin)
    return script


def script_lines(script: str) -> Tuple[List[str], List[str]]:
    """A script's lines without its stdin reading, and its stdin values (to extend it: confirm.py)."""
    lines = script.splitlines()
    if lines and lines[0] == STDIN_HEADER:
        lines = lines[len(_stdin_lines(0)):]
    return lines, list(getattr(script, "stdin", ()))


def stdin_lost(output: str) -> bool:
    """Whether a script stopped because its standard input did not arrive."""
    return any(line.rstrip() == STDIN_LOST for line in output.splitlines())


class Stdin:
    """Collects the values a script reads from stdin; `ref` gives the expression for one."""

    def __init__(self, values: Sequence[str] = (), sizing: bool = False):
        self.values = list(values)
        self.sizing = sizing        # for size estimates: every reference as wide as it may get

    def ref(self, value: str) -> str:
        if not _STDIN_SAFE.match(value):
            # never echo the value: it is a secret
            raise IPsecError("a pre-shared key may hold printable ASCII characters only: it reaches the host on "
                             "standard input, which Windows decodes with the console's code page")
        if self.sizing:
            return "%s[99999]" % STDIN_VAR
        self.values.append(value)
        return "%s[%d]" % (STDIN_VAR, len(self.values) - 1)


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


def _section(name: str, command: str) -> List[str]:
    """Run one read command, print its output and exit code between markers."""
    return [
        _say("begin " + name),
        "$out = %s 2>&1" % command,
        "$rc = $LASTEXITCODE",
        "Write-Output $out",
        'Write-Output "%s end %s rc=$rc"' % (MARK, name),
    ]


def _export_section(name: str, args: Sequence[str]) -> List[str]:
    """Run `ldifde -f FILE args` (through cmd /c: a missing ldifde is exit 9009 in any language),
    then print the exported file and remove it; the section's rc is ldifde's."""
    path = "$env:TEMP\\winsec-%s.ldf" % secrets.token_hex(8)
    return [
        _say("begin " + name),
        '$ldf = "%s"' % path,
        "$out = cmd /c ldifde -f $ldf %s 2>&1" % powershell_native_args(list(args)),
        "$rc = $LASTEXITCODE",
        "if ($rc -eq 0) {",
        "$out = Get-Content -LiteralPath $ldf 2>&1",
        "Remove-Item -LiteralPath $ldf",
        "}",
        "Write-Output $out",
        'Write-Output "%s end %s rc=$rc"' % (MARK, name),
    ]


def directory_lines(domain: str) -> List[str]:
    """The domain store's sections: its IPsec objects and its GPOs (directory.py)."""
    return (_export_section("directory", directory.export_args(domain, "objects"))
            + _export_section("directory-gpos", directory.export_args(domain, "gpos")))


def read_lines(dialect: str = "", directory: Optional[str] = None) -> List[str]:
    """The read sections as script lines (shared by the read and the write script).

    `dialect` forces which tool lists the dynamic filters (and so proves that tool exists);
    without it the script picks by the OS version it just read: XP has ipseccmd, 2003 and later
    have `netsh ipsec dynamic` (SYNTAX.md 2 and 3). `directory` (a domain name, or '' for the
    host's own domain) adds the domain store's sections; None leaves them out.
    """
    lines = _section("os", 'reg query "%s"' % OS_KEY)
    lines += ["$osout = $out"]
    lines += _section("store", 'reg query "%s" /s' % IPSEC_KEY)
    # `sc` alone is PowerShell's alias of Set-Content: the service tool must be named sc.exe.
    lines += _section("policyagent", "sc.exe query PolicyAgent")
    # 5.x (2000/XP/2003) keep NoDefaultExempt under Services\IPSEC; 6.x and later under PolicyAgent.
    lines += ["if ($osout -match 'CurrentVersion\\s+REG_SZ\\s+5\\.') {"]
    lines += _section("exempt", 'reg query "%s" /v NoDefaultExempt' % EXEMPT_KEY_LEGACY)
    lines += ["} else {"]
    lines += _section("exempt", 'reg query "%s" /v NoDefaultExempt' % EXEMPT_KEY_MODERN)
    lines += ["}"]
    # Through cmd /c so that a missing tool shows as exit 9009 in any display language. netsh hosts
    # also list the main-mode policies: winsec's own may exist with no rule using it (MMPOLICY_SECTION).
    netsh = (_section("dynamic-netsh", "cmd /c netsh ipsec dynamic show rule")
             + _section(MMPOLICY_SECTION, "cmd /c netsh ipsec dynamic show mmpolicy all"))
    ipseccmd = _section("dynamic-ipseccmd", "cmd /c ipseccmd show filters")
    if dialect == "netsh":
        lines += netsh
    elif dialect == "ipseccmd":
        lines += ipseccmd
    else:
        lines += ["if ($osout -match 'CurrentVersion\\s+REG_SZ\\s+5\\.1') {"] + ipseccmd
        lines += ["} else {"] + netsh + ["}"]
    if directory is not None:
        lines += directory_lines(directory)
    return lines


def read_script(dialect: str = "", directory: Optional[str] = None) -> str:
    return "\n".join(read_lines(dialect, directory) + ["exit 0"]) + "\n"


@dataclass(frozen=True)
class Step:
    """One command of a write batch and the commands that undo it (run newest first)."""
    argv: Tuple[str, ...]
    script: str = ""                    # netsh -f script body (domain store); argv then runs it
    undo: Tuple["Step", ...] = ()
    display: str = ""                   # redacted, for messages
    hidden: Tuple[str, ...] = field(default=(), repr=False)     # argv elements and script lines with a secret


def _command_lines(step: Step, var: str = "$out", stdin: Optional[Stdin] = None) -> List[str]:
    """Script lines that run one step and leave its output in `var` and its exit code in $rc.

    A step with a `script` (the netsh domain store: `set store` holds only within one netsh
    session, SYNTAX.md 1.2) is written to a temporary file, run with `netsh -f`, then removed.
    Hidden argv elements and script lines come from `stdin`.
    """
    if step.hidden and stdin is None:
        raise IPsecError("internal: step %r holds a secret but the script reads no stdin" % step.display)
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
                stdin: Optional[Stdin] = None) -> List[str]:
    """Run `steps` numbered from `first`; stop at the first failure and undo the earlier ones.

    `$failed` holds the number of the failed step (0: none). Every step runs only while nothing
    failed; after the batch, the undo of step i runs when a later step failed, newest first.
    `precheck` lines run first and may set `$failed = -1` so that nothing runs (guard.py).
    Steps with secrets need `stdin`, which collects their values.
    """
    lines = ["$failed = 0"] + list(precheck)
    for number, step in enumerate(steps, first):
        lines += _step_lines(step, number, stdin)
    for number in range(first + len(steps) - 1, first - 1, -1):
        lines += _undo_lines(steps[number - first], number, stdin)
    return lines


def write_script(steps: Sequence[Step], first: int = 1, verify: bool = True, dialect: str = "",
                 precheck: Sequence[str] = (), directory: Optional[str] = None) -> Script:
    """The write script; its secrets are in `.stdin`, never in the text."""
    stdin = Stdin()
    lines = write_lines(steps, first, precheck, stdin)
    if verify:
        lines += read_lines(dialect, directory)
    return make_script(lines + ["exit 0"], stdin.values)


def _units(lines: Sequence[str]) -> int:
    """UTF-16 code units of lines as Ansible joins them (stripped, one newline after each)."""
    return sum(len(ln.strip().encode("utf-16-le")) // 2 + 1 for ln in lines if ln.strip())


def _encoded_length(units: int) -> int:
    return len(POWERSHELL_PREFIX) + 4 * ((2 * units + 2) // 3)


def command_line_length(script: str) -> int:
    """Length of the command line Ansible's PowerShell shell makes of `script` (stripped, encoded)."""
    stripped = "\n".join(ln.strip() for ln in script.splitlines() if ln.strip())
    return len(POWERSHELL_PREFIX) + len(base64.b64encode(stripped.encode("utf-16-le")))


def write_scripts(steps: Sequence[Step], dialect: str = "", limit: int = MAX_COMMAND_LINE,
                  precheck: Sequence[str] = (), directory: Optional[str] = None) -> List[Script]:
    """The batch in as few scripts as fit the command-line limit; only the last one verifies.

    Steps are packed greedily by their encoded size, with room kept in every script for the
    closing read. Each script undoes its own steps on failure; the caller undoes earlier
    scripts' steps (`undo_steps`) when a later one fails. Only the first script runs `precheck`
    (room is kept for it in every one).
    """
    fixed = _units(_stdin_lines(99999) + ["$failed = 0"] + list(precheck) + read_lines(dialect, directory) + ["exit 0"])
    chunks: List[Tuple[int, int]] = []
    start, used = 0, fixed
    sizing = Stdin(sizing=True)
    for index, step in enumerate(steps):
        cost = _units(_step_lines(step, index + 1, sizing) + _undo_lines(step, index + 1, sizing))
        if _encoded_length(fixed + cost) > limit:
            raise IPsecError("step %d alone (%s) does not fit the Windows command-line limit of %d "
                             "characters" % (index + 1, step.display or "?", limit))
        if _encoded_length(used + cost) > limit:
            chunks.append((start, index))
            start, used = index, fixed
        used += cost
    chunks.append((start, len(steps)))
    scripts = [write_script(steps[a:b], a + 1, verify=b == len(steps), dialect=dialect,
                            precheck=precheck if a == 0 else (), directory=directory)
               for a, b in chunks]
    for script in scripts:      # the size arithmetic above must agree with the real encoding
        if command_line_length(script) > limit:
            raise IPsecError("internal: a write script of %d characters exceeds the limit of %d"
                             % (command_line_length(script), limit))
    return scripts


def undo_steps(steps: Sequence[Step]) -> List[Step]:
    """The undo commands of fully completed steps, newest first (for a failure in a later script)."""
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

    @property
    def undo_failed(self) -> List[Tuple[str, Optional[int], str]]:
        return [u for u in self.undone if u[1] != 0 or _NETSH_ERROR.search(u[2])]


_BEGIN = re.compile(r"^%s begin (\S+)$" % MARK)
_END = re.compile(r"^%s end (\S+) rc=(-?\d*)$" % MARK)
_DONE = re.compile(r"^%s done (\d+)$" % MARK)
_FAILED = re.compile(r"^%s failed (\d+) rc=(-?\d*)$" % MARK)
_UNDONE = re.compile(r"^%s undone (\d+\.\d+) rc=(-?\d*)$" % MARK)


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
    "MARK", "MAX_COMMAND_LINE", "Step", "Script", "Stdin", "STDIN_HEADER", "STDIN_LOST", "make_script", "script_lines",
    "stdin_lost",
    "set_content_lines", "Section", "Transcript", "read_lines", "read_script",
    "write_lines", "write_script", "write_scripts", "undo_steps", "command_line_length",
    "parse_transcript", "reg_values", "os_info", "policyagent_state", "no_default_exempt",
    "store_text", "tool_missing", "dynamic_section", "mmpolicy_section", "MMPOLICY_SECTION",
]
