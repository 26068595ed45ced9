"""The part of cmd.exe that winsim needs: `cmd /c <line>` and the lines WinRM itself runs.

Sources: `cmd /?` (the /C quote rule), Microsoft Learn "cmd" and "Command shell overview"
(`&`, `&&`, `||`, `|`, `>`, `>>`, `2>&1`, `^`), and the phase model of cmd's parser as documented
by the community analysis "How does the Windows Command Interpreter (CMD.EXE) parse scripts?"
(percent expansion first, then special characters with `"` toggling quoting and `^` escaping).
An external program receives the command text (carets removed, redirections taken out) as its
command line and splits it itself (CommandLineToArgvW).
"""
import re
from typing import List, Optional, Tuple

from . import process
from .cmdline import command_line_to_argv
from ..result import Result

NOT_RECOGNIZED = ("'%s' is not recognized as an internal or external command,\r\n"
                  "operable program or batch file.\r\n")
_SPECIAL_IN_QUOTED_EXE = set("&<>()@^|")
_EXECUTABLE = re.compile(r"\.(exe|com|bat|cmd)$", re.I)


def run_cmd_process(machine, args_text: str, stdin: str = "") -> Result:
    """cmd.exe started with `args_text` after its program name."""
    rest, strip_mode = _after_c_switch(args_text)
    if rest is None:
        # No /C or /K: an interactive cmd reading its commands from stdin ([I] prompt text and
        # banner are not emulated).
        return _run_lines(machine, stdin.splitlines(), "")
    return run_line(machine, _strip_quotes(rest, strip_mode), stdin)


def _after_c_switch(text: str) -> Tuple[Optional[str], bool]:
    i = 0
    strict_strip = False
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        m = re.compile(r"/([A-Za-z])(:\S*)?").match(text, i)
        if not m:
            return None, strict_strip
        switch = m.group(1).lower()
        i = m.end()
        if switch in ("c", "k"):
            while i < len(text) and text[i] in " \t":
                i += 1
            return text[i:], strict_strip
        if switch == "s":
            strict_strip = True


def _strip_quotes(rest: str, strict_strip: bool) -> str:
    """`cmd /?`: quotes are kept only when there are exactly two, nothing special between them,
    whitespace between them and the quoted text names an executable file; otherwise a leading
    quote and the last quote on the line are removed."""
    if not strict_strip and rest.count('"') == 2:
        first, last = rest.index('"'), rest.rindex('"')
        inner = rest[first + 1:last]
        if not (set(inner) & _SPECIAL_IN_QUOTED_EXE) and re.search(r"\s", inner) \
                and _EXECUTABLE.search(inner):   # [I] "is an executable" judged by its extension
            return rest
    if rest.startswith('"'):
        last = rest.rindex('"')
        return rest[1:last] + rest[last + 1:] if last > 0 else rest[1:]
    return rest


def expand_percent(machine, line: str) -> str:
    """Phase 1: %NAME% becomes its value; an undefined name stays as typed (command-line rule)."""
    def sub(m):
        name = m.group(1)
        if name.lower() == "errorlevel":
            return str(machine.errorlevel)
        value = machine.getenv(name)
        return m.group(0) if value is None else value
    return re.sub(r"%([^%\r\n]+)%", sub, line)


def run_line(machine, line: str, stdin: str = "") -> Result:
    """One cmd.exe command line: `a & b`, `a && b`, `a || b`, `a | b`, with redirections."""
    try:
        chain = _split(expand_percent(machine, line))
    except _Syntax:
        chain = []
    if len(chain) == 1 and len(chain[0][1]) == 1 and not chain[0][1][0].redirects:
        # One program whose stdout is the console: WinRS hands its output to the client while it
        # runs ([MS-WSMV] 3.1.4.14: Receive "collect[s] output from a running command").
        machine.console = process.console()
    return _run_lines(machine, [line], stdin)


def _run_lines(machine, lines: List[str], stdin: str) -> Result:
    total = Result()
    for raw in lines:
        try:
            chain = _split(expand_percent(machine, raw))
        except _Syntax as e:
            total = total + Result("", str(e) + "\r\n", 255)
            machine.errorlevel = 255
            continue
        result, stop = _run_chain(machine, chain, stdin)
        total = total + result
        if stop:
            break
    return total


class _Syntax(Exception):
    pass


class _Simple:
    def __init__(self):
        self.text: List[str] = []
        self.redirects: List[Tuple[str, str]] = []   # (operator, target)


def _split(line: str) -> List[Tuple[str, List[_Simple]]]:
    """Phase 2: [(operator before it, [pipeline of simple commands])]."""
    chain: List[Tuple[str, List[_Simple]]] = []
    pipeline: List[_Simple] = [_Simple()]
    op = ""
    quoted = False
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        cur = pipeline[-1]
        if c == '"':
            quoted = not quoted
            cur.text.append(c)
            i += 1
            continue
        if quoted:
            cur.text.append(c)
            i += 1
            continue
        if c == "^":
            if i + 1 < n:
                cur.text.append(line[i + 1])
            i += 2
            continue
        if c in "&|":
            double = line[i:i + 2] in ("&&", "||")
            if c == "|" and not double:
                pipeline.append(_Simple())
                i += 1
                continue
            chain.append((op, pipeline))
            op = line[i:i + 2] if double else "&"
            pipeline = [_Simple()]
            i += 2 if double else 1
            continue
        m = re.compile(r"([12]?)(>>?|<)(&[12])?").match(line, i)
        if m and (m.group(1) == "" or i == 0 or line[i - 1] in " \t"):
            operator = (m.group(1) or ("0" if m.group(2) == "<" else "1")) + m.group(2)
            i = m.end()
            if m.group(3):
                cur.redirects.append((operator, m.group(3)))
                continue
            while i < n and line[i] in " \t":
                i += 1
            start = i
            while i < n and line[i] not in " \t&|<>":
                i += 1
            if start == i:
                raise _Syntax("The syntax of the command is incorrect.")
            cur.redirects.append((operator, line[start:i].strip('"')))
            continue
        cur.text.append(c)
        i += 1
    chain.append((op, pipeline))
    for operator, pipe in chain:
        if operator and not "".join(pipe[0].text).strip():
            raise _Syntax("%s was unexpected at this time." % operator)
    return chain


def _run_chain(machine, chain, stdin: str) -> Tuple[Result, bool]:
    total = Result()
    for op, pipeline in chain:
        if op == "&&" and machine.errorlevel != 0:
            continue
        if op == "||" and machine.errorlevel == 0:
            continue
        data = stdin
        result = Result()
        for n, simple in enumerate(pipeline):
            result, stop = _run_simple(machine, simple, data)
            if n < len(pipeline) - 1:
                total = total + Result("", result.stderr, result.rc)
                data = result.stdout
            if stop:
                return total + result, True
        total = total + result
        machine.errorlevel = result.rc
    return total, False


def _run_simple(machine, simple: _Simple, stdin: str) -> Tuple[Result, bool]:
    for operator, target in simple.redirects:
        if operator == "0<":
            stdin = machine.read_file(target)
            if stdin is None:
                return Result("", "The system cannot find the file specified.\r\n", 1), False
    text = "".join(simple.text).lstrip(" \t@")
    if not text.strip():
        return Result("", "", machine.errorlevel), False
    m = re.compile(r'(?:"[^"]*"?|[^\s"])+').match(text)
    token = m.group(0)
    name = token.replace('"', "")
    stop = False
    builtin = re.match(r"(echo|type|exit|rem|set|ver)(?=$|[\s.(/])", text, re.I)
    if builtin and not token.startswith('"'):
        result, stop = _builtin(machine, builtin.group(1).lower(), text[builtin.end():], stdin)
    else:
        argv = command_line_to_argv(text)
        argv[0] = name
        args_text = text[m.end():].lstrip(" \t")
        result = machine.run_process(name, argv, args_text, stdin)
        if result is None:
            result = Result("", NOT_RECOGNIZED % name, 9009)
    return _redirect(machine, simple.redirects, result), stop


def _builtin(machine, name: str, rest: str, stdin: str) -> Tuple[Result, bool]:
    if name == "echo":
        if not rest.strip(" \t"):
            return Result("ECHO is on.\r\n"), False
        return Result(rest[1:] + "\r\n"), False     # the one delimiter after ECHO is dropped
    if name == "rem":
        return Result(), False
    if name == "ver":
        return Result("\r\n%s\r\n" % machine.ver_text()), False
    if name == "exit":
        m = re.match(r"\s*(/b)?\s*(-?\d+)?", rest, re.I)
        code = int(m.group(2)) if m.group(2) else (machine.errorlevel if m.group(1) else 0)
        return Result("", "", code), True
    if name == "set":
        assignment = rest.strip()
        if "=" not in assignment:
            ordered = sorted(machine.env.items(), key=lambda kv: kv[0].lower())
            lines = ["%s=%s" % kv for kv in ordered
                     if kv[0].lower().startswith(assignment.lower())]
            if not lines:
                return Result("", "Environment variable %s not defined\r\n" % assignment, 1), False
            return Result("".join(line + "\r\n" for line in lines)), False
        key, value = assignment.split("=", 1)
        machine.setenv(key, value)
        return Result(), False
    # type
    outputs, errors, rc = [], [], 0
    for path in command_line_to_argv("type " + rest)[1:]:
        text = machine.read_file(path)
        if text is None:
            errors.append("The system cannot find the file specified.\r\n")
            rc = 1
        else:
            outputs.append(text)
    return Result("".join(outputs), "".join(errors), rc), False


def _redirect(machine, redirects, result: Result) -> Result:
    out, err = result.stdout, result.stderr
    for operator, target in redirects:
        if target in ("&1", "&2"):
            if operator.startswith("2") and target == "&1":
                out, err = out + err, ""
            elif operator.startswith("1") and target == "&2":
                out, err = "", err + out
            continue
        if operator.startswith("0"):
            continue
        stream_text = err if operator.startswith("2") else out
        if target.lower() != "nul":
            machine.write_file(target, stream_text, operator.endswith(">>"))
        if operator.startswith("2"):
            err = ""
        else:
            out = ""
    return Result(out, err, result.rc)
