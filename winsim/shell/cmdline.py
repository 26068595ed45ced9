"""How a Windows command line becomes argv, and how Windows PowerShell 5.1 builds one.

Two halves of the same road, both emulated so that the engine's quoting can be proven end to end:

* `command_line_to_argv`: what a tool does with the single string Windows hands it
  (shell32 CommandLineToArgvW; the C runtime's rules are the same for everything after argv[0]).
  Sources: Microsoft Learn "Parsing C++ command-line arguments" and "CommandLineToArgvW";
  the rule for runs of double quotes as Wine's dlls/shell32/shell32_main.c implements it from its
  conformance tests against real Windows.
* `legacy_argument_text` / `legacy_command_line`: what Windows PowerShell 5.1 writes on that
  command line for a native command's evaluated arguments (NativeCommandParameterBinder before
  PowerShell 7.3's `$PSNativeCommandArgumentPassing`). Sources: PowerShell issue #1995 (the
  catch-all: embedded quotes are not escaped), #7400 and #26432 (a trailing backslash is not
  doubled before the closing quote in Windows PowerShell), #6280 (an empty-string argument is
  dropped), about_Parsing (`--%` stop-parsing).
"""
import unicodedata
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Union

_BLANKS = " \t"


def command_line_to_argv(command_line: str) -> List[str]:
    """Split a command line as CommandLineToArgvW does.

    argv[0] (the program) follows its own rule: a leading quote runs to the next quote with no
    escapes, otherwise it ends at the first whitespace. After it:
    - blanks (space, tab) outside quotes separate arguments;
    - 2n backslashes + quote -> n backslashes, and the quote toggles quoting;
    - 2n+1 backslashes + quote -> n backslashes and a literal quote;
    - backslashes not followed by a quote are literal;
    - runs of quotes: every third quote of a run (counting the one that opened the quoted
      part) is a literal quote, and a run that leaves the count at 2 closes quoting
      (so `"a""b"` gives a"b and three quotes in a row give one literal quote).
    """
    s = command_line
    n = len(s)
    i = 0
    argv: List[str] = []
    # argv[0]
    d: List[str] = []
    if s.startswith('"'):
        i = 1
        while i < n and s[i] != '"':
            d.append(s[i])
            i += 1
        if i < n:
            i += 1
    else:
        while i < n and not s[i].isspace():
            d.append(s[i])
            i += 1
        if i < n:
            i += 1
    argv.append("".join(d))
    while i < n and s[i] in _BLANKS:
        i += 1
    if i >= n:
        return argv

    d = []
    qcount = 0
    bcount = 0
    while i < n:
        c = s[i]
        if c in _BLANKS and qcount == 0:
            argv.append("".join(d))
            d = []
            bcount = 0
            while i < n and s[i] in _BLANKS:
                i += 1
            if i >= n:
                return argv
            continue
        if c == "\\":
            d.append(c)
            bcount += 1
            i += 1
            continue
        if c == '"':
            if bcount % 2 == 0:
                del d[len(d) - bcount // 2:]
                qcount += 1
            else:
                del d[len(d) - bcount // 2 - 1:]
                d.append('"')
            i += 1
            bcount = 0
            while i < n and s[i] == '"':
                qcount += 1
                if qcount == 3:
                    d.append('"')
                    qcount = 0
                i += 1
            if qcount == 2:
                qcount = 0
            continue
        d.append(c)
        bcount = 0
        i += 1
    argv.append("".join(d))
    return argv


def legacy_argument_text(arg: str) -> str:
    """One argument as Windows PowerShell 5.1 writes it on the command line.

    Wrapped in double quotes only when it has whitespace outside an (odd-counted) double quote;
    embedded quotes are not escaped and trailing backslashes are not doubled (#1995, #26432).
    The caller drops empty strings (#6280).
    """
    quotes = 0
    needs_quotes = False
    for c in arg:
        if c == '"':
            quotes += 1
        elif _dotnet_whitespace(c) and quotes % 2 == 0:
            needs_quotes = True
    return '"%s"' % arg if needs_quotes else arg


def _dotnet_whitespace(c: str) -> bool:
    """.NET char.IsWhiteSpace, which the binder uses: Unicode space, line and paragraph
    separators, U+0009..U+000D and U+0085 (not Python's str.isspace, which adds U+001C..U+001F)."""
    return c in "\t\n\v\f\r\x85" or unicodedata.category(c) in ("Zs", "Zl", "Zp")


@dataclass(frozen=True)
class Argument:
    """An evaluated argument. A list is an array: its elements are written one after the other,
    joined by ',' when it was an array literal on the command line (`a,b`), else by ' '."""
    value: Union[str, Sequence[str]]
    comma_joined: bool = False


@dataclass(frozen=True)
class Parameter:
    """A `-name` token, written as typed and never quoted; `-name:value` carries its argument
    (space_after when a blank followed the colon: `-name: value`)."""
    text: str
    argument: Optional[Argument] = None
    space_after: bool = False


@dataclass(frozen=True)
class Verbatim:
    """Everything after the `--%` token, passed as is except %NAME% (about_Parsing)."""
    text: str


NativePiece = Union[Parameter, Argument, Verbatim]
STOP_PARSING = "--%"


def legacy_command_line(pieces: Sequence[NativePiece],
                        expand_env: Callable[[str], str] = lambda text: text,
                        stop_parsing: bool = True) -> str:
    """The argument part of the command line Windows PowerShell builds for a native command.

    The binder compares argument *values* with `--%`, so a quoted '--%' is swallowed and turns
    on verbatim mode too (PowerShell issue #11608, shown on 7.0 whose legacy binder is the 5.1
    code): every later argument is then written unquoted with %NAME% expanded. PowerShell 2.0
    has no `--%` (stop_parsing=False).
    """
    out: List[str] = []
    verbatim = False
    first = True
    for piece in pieces:
        if not first:
            out.append(" ")
        first = False
        if isinstance(piece, Parameter):
            out.append(piece.text)
            if piece.argument is not None:
                if piece.space_after:
                    out.append(" ")
                out.append(_argument_text(piece.argument, verbatim, expand_env))
        elif isinstance(piece, Verbatim):
            out.append(expand_env(piece.text))
        elif stop_parsing and piece.value == STOP_PARSING:
            verbatim = True
        else:
            out.append(_argument_text(piece, verbatim, expand_env))
    return "".join(out)


def _argument_text(argument: Argument, verbatim: bool, expand_env: Callable[[str], str]) -> str:
    values = [argument.value] if isinstance(argument.value, str) else list(argument.value)
    separator = "," if argument.comma_joined else " "
    write = expand_env if verbatim else legacy_argument_text
    return separator.join(write(v) for v in values if v != "")
