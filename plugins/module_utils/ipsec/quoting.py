# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The Windows command-line rules, both ways.

A Windows program receives one command-line string and splits it itself. The tools we drive
(netsh, ipseccmd, ipsecpol, reg) split it the way CommandLineToArgvW and the Microsoft C runtime do,
so every argument we send is encoded for that splitter, and proven by splitting it back:

- `split_command_line` / `join_command_line`: the CommandLineToArgvW rules and their inverse.
- `powershell_native_args`: the same arguments written as a Windows PowerShell 5.1 statement, whose
  legacy native-argument passing rebuilds a command line from them (and gets embedded quotes wrong);
  `emulate_ps51_native_command_line` is that rebuild, so tests can prove the round trip.
- `cmd_safe`: what may appear in a line that cmd.exe reads (rendered .cmd scripts for Windows 2000).

Standard library only: this ships to controllers as module_utils.
"""
from __future__ import annotations

import re
import unicodedata

from .model import ValidationError

# Only space and tab separate arguments ("Parsing C++ command-line arguments", learn.microsoft.com;
# CommandLineToArgvW remarks).
_SEPARATORS = " \t"
# A command line cannot carry NUL; CR/LF would end the line in every script we write it into.
_UNREPRESENTABLE = "\x00\r\n"
# Characters cmd.exe acts on outside double quotes. join_command_line quotes an argument holding one
# so that a line copied into cmd.exe still reaches the program unchanged (see cmd_safe for the rest).
_CMD_SPECIAL = "&|<>^()"
# netsh style `tag=value`: join_command_line writes tag="value" (see _quote_argument).
_NETSH_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_]*=")
# Characters PowerShell's tokenizer treats as a single quote (ASCII ' and four typographic ones:
# CharTraits.IsSingleQuote, as ansible.windows' quote filter notes, PR #48); inside a single-quoted
# literal each is escaped by doubling.
_PS_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
# The longest command line CreateProcess accepts is 32767 characters including the terminating NUL
# (CreateProcessW, lpCommandLine).
MAX_COMMAND_LINE = 32766

VARIANTS = ("argvw", "msvcrt2008")


def _reject_unrepresentable(option, value):
    if not isinstance(value, str):
        raise ValidationError(option, value, "a string")
    bad = [c for c in value if c in _UNREPRESENTABLE]
    if bad:
        raise ValidationError(option, value, "text without NUL, carriage return or line feed",
                              "contains %r, which no Windows command line can carry" % bad[0])


# --------------------------------------------------------------------------------------------
# CommandLineToArgvW
# --------------------------------------------------------------------------------------------

def split_command_line(line: str, first_is_program: bool = True, variant: str = "argvw") -> list:
    """Split a command line into arguments as Windows programs do.

    Rules (learn.microsoft.com "Parsing C++ command-line arguments" and the CommandLineToArgvW
    remarks): space and tab separate arguments outside a quoted region; a double quote opens or
    closes a quoted region; 2n backslashes before a quote give n backslashes and the quote is a
    delimiter, 2n+1 backslashes before a quote give n backslashes and a literal quote; backslashes
    not before a quote are literal. The program name (first_is_program) follows its own rule: it
    ends at the next quote if it starts with one, else at the first space or tab, and backslashes
    are never special in it.

    Two consecutive quotes inside a quoted region are not documented by CommandLineToArgvW and the
    C runtimes disagree:
      variant="argvw"      CommandLineToArgvW and the msvcrt before 2008: `""` inside a quoted
                           region gives a literal quote and *ends* the region; in general every
                           third quote of a run is literal. The corrected table of the Microsoft
                           doc (`a"b"" c d` -> `ab"`, `c`, `d`) shows this behaviour.
      variant="msvcrt2008" the C runtime since Visual C++ 2008: `""` inside a quoted region gives a
                           literal quote and the region stays open.
    Our encoders never write `""` inside a quoted region, so what they produce splits the same under
    both variants; the tests check both.

    An empty line gives [] (CommandLineToArgvW would return the calling program's own path).
    """
    if variant not in VARIANTS:
        raise ValueError("variant must be one of %s" % ", ".join(VARIANTS))
    args = []
    i, n = 0, len(line)
    if first_is_program and line:
        if line[0] == '"':
            end = line.find('"', 1)
            end = n if end < 0 else end
            args.append(line[1:end])
            i = end + 1
        else:
            while i < n and line[i] not in _SEPARATORS:
                i += 1
            args.append(line[:i])       # empty when the line starts with a separator
    while True:
        while i < n and line[i] in _SEPARATORS:
            i += 1
        if i >= n:
            return args
        arg, i = (_scan_argvw if variant == "argvw" else _scan_msvcrt2008)(line, i)
        args.append(arg)


def _scan_backslashes(line, i, out):
    """Consume a run of backslashes at i. Returns (index after, True if a literal quote was made)."""
    start = i
    while i < len(line) and line[i] == "\\":
        i += 1
    count = i - start
    if i < len(line) and line[i] == '"':
        out.append("\\" * (count // 2))
        if count % 2:
            out.append('"')
            return i + 1, True
        return i, False
    out.append("\\" * count)
    return i, False


def _scan_argvw(line, i):
    """One argument by the CommandLineToArgvW rule for runs of quotes (see split_command_line)."""
    out = []
    quotes = 0          # 0 outside a quoted region, 1 inside; counts within a run of quotes
    n = len(line)
    while i < n:
        c = line[i]
        if c in _SEPARATORS and quotes == 0:
            break
        if c == "\\":
            i, literal = _scan_backslashes(line, i, out)
            if not literal:
                continue
        elif c == '"':
            quotes += 1
            i += 1
        else:
            out.append(c)
            i += 1
            continue
        # After a quote (delimiter or backslash-escaped), a run of further quotes: every third
        # quote of the run, counting the open region, is a literal one.
        while i < n and line[i] == '"':
            quotes += 1
            if quotes == 3:
                out.append('"')
                quotes = 0
            i += 1
        if quotes == 2:
            quotes = 0
    return "".join(out), i


def _scan_msvcrt2008(line, i):
    """One argument by the Visual C++ 2008+ runtime rule (`""` in a region is a literal quote)."""
    out = []
    inside = False
    n = len(line)
    while i < n:
        c = line[i]
        if c in _SEPARATORS and not inside:
            break
        if c == "\\":
            i, _ = _scan_backslashes(line, i, out)
        elif c == '"':
            if inside and i + 1 < n and line[i + 1] == '"':
                out.append('"')
                i += 2
            else:
                inside = not inside
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out), i


def join_command_line(argv, first_is_program: bool = True, option: str = "command") -> str:
    """The command line that split_command_line turns back into exactly argv.

    It is also the human-readable form of the command, as an admin would type it: an argument is
    quoted only when it must be (empty, or holding a space or tab) or when it holds a character
    cmd.exe would act on (& | < > ^ ( )). Embedded quotes get a backslash, and backslashes before a
    quote or before the closing quote are doubled (the 2n / 2n+1 rules).

    A netsh `tag=value` argument is written `tag="value"`: the region opens after `=`. Splitting is
    unchanged by that, because the quoted region only suppresses separators and the text before the
    quote is copied the same way inside or outside a region (proven by the round-trip tests).
    """
    parts = []
    for index, arg in enumerate(argv):
        name = "%s[%d]" % (option, index)
        _reject_unrepresentable(name, arg)
        if index == 0 and first_is_program:
            parts.append(_quote_program(name, arg))
        else:
            parts.append(_quote_argument(arg))
    return _checked_length(option, " ".join(parts))


def _checked_length(option, line):
    if len(line) > MAX_COMMAND_LINE:
        raise ValidationError(option, line, "a command line of at most %d characters" % MAX_COMMAND_LINE,
                              "it would be %d characters long" % len(line))
    return line


def _quote_program(option, program):
    # The program name cannot carry a quote nor be empty: its rule has no escape (split_command_line).
    if not program or '"' in program:
        raise ValidationError(option, program, "a non-empty program name without double quotes")
    if any(c in _SEPARATORS or c in _CMD_SPECIAL for c in program):
        return '"%s"' % program
    return program


def _quote_argument(arg):
    needs_region = arg == "" or any(c in _SEPARATORS or c in _CMD_SPECIAL for c in arg)
    if not needs_region:
        return _escape_quotes(arg, closing=False)
    tag = _NETSH_TAG.match(arg)
    prefix, value = (arg[:tag.end()], arg[tag.end():]) if tag else ("", arg)
    return '%s"%s"' % (prefix, _escape_quotes(value, closing=True))


def _escape_quotes(text, closing):
    """Backslash-escape quotes; double the backslashes a quote follows (and, if `closing`, the
    trailing ones, which the closing quote of the region follows)."""
    out = []
    backslashes = 0
    for c in text:
        if c == "\\":
            backslashes += 1
            continue
        if c == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
        else:
            out.append("\\" * backslashes + c)
        backslashes = 0
    out.append("\\" * (2 * backslashes if closing else backslashes))
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Windows PowerShell 5.1, legacy native argument passing
# --------------------------------------------------------------------------------------------
#
# How Windows PowerShell 5.1 builds the command line of a native program (NativeCommandParameterBinder;
# what $PSNativeCommandArgumentPassing='Legacy' keeps in PowerShell 7.3+; PowerShell issues #1995 and
# #14747, PowerShell-RFC PR #90 "Improve generation of argument string for executables"):
#   - each argument is evaluated to a string; an empty string is dropped entirely (#14747);
#   - the strings are joined with single spaces;
#   - a string is wrapped in double quotes when it contains a whitespace character (.NET
#     char.IsWhiteSpace) preceded by an even number of double quotes in the string; every `"` counts,
#     even one escaped with a backslash, and nothing inside is escaped. Issue #1995 (comment of
#     2017-05-22) shows both sides: 'A \"B' arrives as "A \"B" (wrapped, one argument) while
#     'A\" B' arrives as A\" B (not wrapped, split in two). PowerShell 6+ later stopped counting
#     backslash-escaped quotes; 5.1 did not get that change;
#   - a trailing backslash of a wrapped string escapes the closing quote ("C:\dir\"): issue #4358,
#     fixed only in PowerShell 6 (PR #4965).
# The program itself then splits that line by the CommandLineToArgvW rules.
#
# powershell_native_args therefore writes, per argument, a string that is already a
# CommandLineToArgvW token for it, and arranges its quotes so that PowerShell's quote counting
# either leaves it alone or wraps it in a way the token expects. Every result is verified by
# emulating PowerShell and splitting the result under both splitter variants.


def _ps_whitespace(c):
    # .NET char.IsWhiteSpace: Unicode separators (Zs, Zl, Zp), U+0009..U+000D and U+0085.
    return c in "\t\n\v\f\r\x85" or unicodedata.category(c) in ("Zs", "Zl", "Zp")


def _ps_wraps(value):
    """Whether PowerShell 5.1 wraps this argument string in double quotes (see above)."""
    quotes = 0
    for c in value:
        if c == '"':
            quotes += 1
        elif _ps_whitespace(c) and quotes % 2 == 0:
            return True
    return False


def emulate_ps51_native_command_line(values, program: str = "") -> str:
    """The command line Windows PowerShell 5.1 builds from already-evaluated argument strings.

    With `program`, the line starts with it in double quotes, as .NET's Process.Start writes the
    file name ([I] not verified on real Windows; the tests split with first_is_program=False).
    """
    parts = []
    for value in values:
        if value == "":
            continue
        parts.append('"%s"' % value if _ps_wraps(value) else value)
    line = " ".join(parts)
    if program:
        line = '"%s" %s' % (program, line) if line else '"%s"' % program
    return line


def _ps_encode(arg, wrapped):
    """A string that becomes CommandLineToArgvW token `arg` after PowerShell's treatment.

    wrapped=False: PowerShell must leave it as it is; the token opens and closes its own quoted
    regions. wrapped=True: PowerShell wraps it; the token starts inside a region and its end is
    closed by PowerShell's quote. A literal quote is always `\\"`, which PowerShell counts though the
    splitter does not; a whitespace character that is not a separator can sit inside or outside a
    region, and is placed where PowerShell's count says "already quoted" (unwrapped) or "not quoted"
    (wrapped). Whether the result really works is checked by the caller.
    """
    if arg == "":
        return '""'
    out = []
    inside = wrapped
    literal_quotes = 0
    backslashes = 0

    def toggle():
        nonlocal inside, backslashes
        out.append("\\" * (2 * backslashes) + '"')
        backslashes = 0
        inside = not inside

    for c in arg:
        if c == "\\":
            backslashes += 1
            continue
        if c in _SEPARATORS:
            want = True
        elif _ps_whitespace(c):
            # PowerShell's count before c is (inside + literal_quotes + wrapped) mod 2; we want it
            # odd when unwrapped, even when wrapped: both give inside = not (literal_quotes odd).
            want = literal_quotes % 2 == 0
        else:
            want = inside
        if want != inside:
            toggle()
        if c == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
            literal_quotes += 1
        else:
            out.append("\\" * backslashes + c)
        backslashes = 0
    if inside != wrapped:
        toggle()
    out.append("\\" * (2 * backslashes if wrapped else backslashes))
    return "".join(out)


def powershell_literal(value: str) -> str:
    """A PowerShell single-quoted string literal: nothing inside it is expanded ($, `, ; & | ...)."""
    return "'%s'" % "".join(c + c if c in _PS_SINGLE_QUOTES else c for c in value)


def powershell_native_args(argv, option: str = "command") -> str:
    """The argument list (after the command name) of a Windows PowerShell 5.1 statement that
    passes exactly argv to a native program.

    Each argument is a single-quoted literal, so PowerShell expands nothing in it. The string
    inside is pre-escaped for PowerShell's legacy command-line building (see above) so that the
    program's CommandLineToArgvW split gives back argv. An argument that cannot survive that
    (a space or tab after an odd number of quotes, e.g. '"a b"', with no other whitespace to make
    PowerShell wrap it) is rejected with ValidationError.
    """
    return " ".join(powershell_literal(value) for value in powershell_native_values(argv, option))


def powershell_native_values(argv, option: str = "command") -> list:
    """The argument strings powershell_native_args writes as literals, one per argument.

    A variable holding one of them passes the same argument: the legacy binder works on the
    evaluated string, whatever expression produced it (NativeCommandParameterBinder; see above).
    remote.py uses that to take secrets out of the script (they arrive on stdin).
    """
    values = []
    for index, arg in enumerate(argv):
        name = "%s[%d]" % (option, index)
        _reject_unrepresentable(name, arg)
        values.append(_ps_value_for(name, arg))
    _checked_length(option, emulate_ps51_native_command_line(values))
    return values


# Printable ASCII without space, double quote or backslash: nothing in it is whitespace or quoting to
# PowerShell's command-line building or to CommandLineToArgvW, so the argument passes as it is (what the
# round trip below finds for it, at a fraction of its cost; test_quoting holds the two equal).
_PLAIN_ARG = re.compile(r"[!#-\[\]-~]+")


def _ps_value_for(option, arg):
    if arg != "--%" and _PLAIN_ARG.fullmatch(arg):
        return arg
    return _ps_value_checked(option, arg)


def _ps_value_checked(option, arg):
    if arg == "--%":
        # PowerShell 5.1 takes a bare --%, even from a quoted literal, as the stop-parsing token and
        # swallows it (PowerShell issue #11608); quoted inside, it reaches the program as --%.
        return '"--%"'
    # Wrapped first: then the PowerShell text reads as the argument itself ('name=A B').
    for wrapped in (True, False):
        value = _ps_encode(arg, wrapped)
        if _ps_wraps(value) != wrapped:
            continue
        line = emulate_ps51_native_command_line([value])
        if all(split_command_line(line, False, v) == [arg] for v in VARIANTS):
            return value
    raise ValidationError(option, arg, "text that Windows PowerShell 5.1 can pass to a program intact",
                          "a space or tab follows an odd number of double quotes, which PowerShell "
                          "5.1 legacy argument passing cannot deliver")


# --------------------------------------------------------------------------------------------
# cmd.exe
# --------------------------------------------------------------------------------------------

# What cmd.exe still reinterprets inside double quotes ("cmd /?", "set /?" and "setlocal /?"):
#   %  variable expansion (%name%, and %1 in a batch file), even inside quotes;
#   !  delayed expansion when it is enabled (setlocal EnableDelayedExpansion, cmd /v:on);
#   "  toggles cmd's own quote state, exposing what follows to & | < > ^;
#   CR, LF, NUL and other control characters end or corrupt the line.
_CMD_REJECTED = '%!"'


def cmd_safe(option: str, value: str, encoding: str = "") -> str:
    """Accept `value` for a line that goes through cmd.exe (a rendered .cmd script), or raise.

    Values passing this check are written by join_command_line inside double quotes whenever they
    hold & | < > ^ ( ) or spaces, where cmd.exe leaves them alone. With `encoding` (the host's OEM
    code page, e.g. "cp437"), characters the script file cannot hold are rejected too.
    """
    if not isinstance(value, str):
        raise ValidationError(option, value, "a string")
    accepted = "text without %s, ! or double quotes and without control characters" % "%"
    for c in value:
        if c in _CMD_REJECTED:
            raise ValidationError(option, value, accepted,
                                  "cmd.exe would reinterpret %r even inside quotes" % c)
        if c != "\t" and unicodedata.category(c) == "Cc":
            raise ValidationError(option, value, accepted,
                                  "control character %r cannot appear in a cmd.exe line" % c)
    if encoding:
        try:
            value.encode(encoding)
        except UnicodeEncodeError as exc:
            raise ValidationError(option, value, "text the %s code page can hold" % encoding,
                                  "%r has no %s encoding" % (value[exc.start], encoding)) from None
    return value


__all__ = [
    "MAX_COMMAND_LINE", "VARIANTS", "split_command_line", "join_command_line",
    "emulate_ps51_native_command_line", "powershell_literal", "powershell_native_args", "powershell_native_values",
    "cmd_safe",
]
