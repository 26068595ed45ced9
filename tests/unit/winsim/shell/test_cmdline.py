"""winsim.shell.cmdline: CommandLineToArgvW and Windows PowerShell 5.1's legacy command-line building."""
import pytest

from winsim.shell.cmdline import (Argument, Parameter, Verbatim, command_line_to_argv,
                            legacy_argument_text, legacy_command_line)

# The table of Microsoft Learn "Parsing C++ command-line arguments" (program name prepended), and
# the quote-run cases Wine's shell32 tests pin for CommandLineToArgvW.
ARGV_TABLE = [
    ('p "abc" d e', ["abc", "d", "e"]),
    (r'p a\\\b d"e f"g h', [r"a\\\b", "de fg", "h"]),
    (r'p a\\\"b c d', [r'a\"b', "c", "d"]),
    (r'p a\\\\"b c" d e', [r"a\\b c", "d", "e"]),
    ('p a"b"" c d', ['ab"', "c", "d"]),
    ('p "a""b"', ['a"b']),
    ('p """"', ['"']),
    ('p ""', [""]),
    ('p "" ""', ["", ""]),
    ('p e""f', ["ef"]),
    ("p \ta  \t b ", ["a", "b"]),
    (r'p C:\dir\ "C:\p q\"', ["C:\\dir\\", 'C:\\p q"']),
    ('p name="Block UDP 1434 Filter" x', ["name=Block UDP 1434 Filter", "x"]),
    ("p Blöck\u00a0ü", ["Blöck\u00a0ü"]),      # only space and tab separate arguments
]


@pytest.mark.parametrize("line,expected", ARGV_TABLE)
def test_command_line_to_argv_table(line, expected):
    assert command_line_to_argv(line)[1:] == expected


def test_program_name_has_its_own_rule():
    # argv[0]: a leading quote runs to the next quote, no backslash escapes; else up to a blank.
    assert command_line_to_argv(r'"C:\Program Files\x.exe" a') == [r"C:\Program Files\x.exe", "a"]
    assert command_line_to_argv(r'C:\x\"y z') == [r'C:\x\"y', "z"]
    assert command_line_to_argv('"a b"c d') == ["a b", "c", "d"]
    assert command_line_to_argv("tool") == ["tool"]


# Windows PowerShell 5.1 NativeCommandParameterBinder: wrap only when whitespace sits outside an
# odd number of quotes; never escape (issues #1995, #7400, #26432).
LEGACY_TABLE = [
    ("name=Block UDP 1434 Filter", '"name=Block UDP 1434 Filter"'),
    ("plain", "plain"),
    ('a"b', 'a"b'),
    ('a" b', 'a" b'),                   # odd quote count before the space: not wrapped
    ('"a b"', '"a b"'),                 # looks quoted already: left alone
    ("C:\\p q\\", '"C:\\p q\\"'),       # the trailing backslash now escapes the closing quote
    ("a\tb", '"a\tb"'),
    ("a\u00a0b", '"a\u00a0b"'),         # .NET char.IsWhiteSpace includes NBSP
    ("a\x1fb", "a\x1fb"),               # ...but not U+001F, unlike Python's isspace
]


@pytest.mark.parametrize("value,written", LEGACY_TABLE)
def test_legacy_argument_text(value, written):
    assert legacy_argument_text(value) == written


def test_legacy_command_line_pieces():
    line = legacy_command_line([
        Argument("static"), Argument(""), Parameter("-f:", Argument("a b")),
        Parameter("-x"), Argument(["a", "b c"], comma_joined=True), Argument(["d", "e f"])])
    assert command_line_to_argv('"t" ' + line)[1:] == ["static", "-f:a b", "-x", "a,b c", "d",
                                                       "e f"]


def test_empty_arguments_are_dropped():
    # Issue #6280: Windows PowerShell passes nothing for '' (the "" literal must be written).
    assert command_line_to_argv('"t" ' + legacy_command_line([Argument(""), Argument("x")]))[1:] \
        == ["x"]
    assert command_line_to_argv('"t" ' + legacy_command_line([Argument('""')]))[1:] == [""]


def test_stop_parsing_is_verbatim_with_environment_expansion():
    def expand(text):
        return text.replace("%TEMP%", r"C:\Windows\TEMP")

    line = legacy_command_line([Argument("--%"), Verbatim('name="a b" %TEMP%')], expand)
    assert command_line_to_argv('"t" ' + line)[1:] == ["name=a b", r"C:\Windows\TEMP"]
    # A *value* of --% switches the binder to verbatim for what follows ([I], see cmdline.py).
    line = legacy_command_line([Argument("--%"), Argument("a b")], expand)
    assert command_line_to_argv('"t" ' + line)[1:] == ["a", "b"]
    # PowerShell 2.0 has no stop-parsing token: --% is an ordinary argument there.
    line = legacy_command_line([Argument("--%"), Argument("a b")], expand, stop_parsing=False)
    assert command_line_to_argv('"t" ' + line)[1:] == ["--%", "a b"]
