# -*- coding: utf-8 -*-
"""The Windows command-line rules: splitting, joining, PowerShell 5.1 passing, cmd.exe safety."""
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import ValidationError
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.quoting import (
    VARIANTS, cmd_safe, emulate_ps51_native_command_line, join_command_line, powershell_literal,
    powershell_native_args, split_command_line,
)
from tests.unit.plugins.module_utils.ipsec.winsim_side import powershell_argument_values
from tests.unit.hostile_corpus import HOSTILE_NAMES, PS51_UNDELIVERABLE, UNREPRESENTABLE

# The table of learn.microsoft.com "Parsing C++ command-line arguments" (arguments after argv[0]).
MICROSOFT_TABLE = [
    ('"a b c" d e', ["a b c", "d", "e"]),
    ('"ab\\"c" "\\\\" d', ['ab"c', "\\", "d"]),
    ('a\\\\\\b d"e f"g h', ["a\\\\\\b", "de fg", "h"]),
    ('a\\\\\\"b c d', ['a\\"b', "c", "d"]),
    ('a\\\\\\\\"b c" d e', ["a\\\\b c", "d", "e"]),
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("line,expected", MICROSOFT_TABLE)
def test_split_follows_the_microsoft_table(line, expected, variant):
    assert split_command_line("prog " + line, variant=variant) == ["prog"] + expected


def test_two_quotes_inside_a_region_differ_by_variant():
    # The corrected doc row `a"b"" c d`: CommandLineToArgvW ends the region after `""`.
    assert split_command_line('a"b"" c d', False, "argvw") == ['ab"', "c", "d"]
    assert split_command_line('a"b"" c d', False, "msvcrt2008") == ['ab" c d']
    # Every third quote of a run is literal under CommandLineToArgvW.
    assert split_command_line('"""a b"""', False, "argvw") == ['"a', 'b"']


def test_program_name_has_its_own_rule():
    assert split_command_line('"C:\\Program Files\\x.exe" -f a') == ["C:\\Program Files\\x.exe", "-f", "a"]
    # Backslashes are not special in the program name, and it ends at the first space.
    assert split_command_line('C:\\a\\"b c') == ['C:\\a\\"b', "c"]
    assert split_command_line('"prog"x y') == ["prog", "x", "y"]
    assert split_command_line(" a b") == ["", "a", "b"]
    assert split_command_line('"unterminated prog') == ["unterminated prog"]


def test_separators_and_empty_arguments():
    assert split_command_line("  a\t\tb  ", False) == ["a", "b"]
    assert split_command_line('a "" b', False) == ["a", "", "b"]
    assert split_command_line("", True) == []
    # Only space and tab separate: other whitespace stays inside the argument.
    assert split_command_line("a\u3000b\u00a0c", False) == ["a\u3000b\u00a0c"]


def test_join_quotes_only_when_needed():
    assert join_command_line(["netsh", "ipsec", "static", "add", "policy", "name=Block UDP 1434 Filter"]) == \
        'netsh ipsec static add policy name="Block UDP 1434 Filter"'
    assert join_command_line(["ipseccmd", "-f", "*=0:1434:UDP", "-p", "Block UDP 1434 Filter"]) == \
        'ipseccmd -f *=0:1434:UDP -p "Block UDP 1434 Filter"'
    assert join_command_line(["x", 'a"b', "a&b", "", "C:\\d\\"]) == 'x a\\"b "a&b" "" C:\\d\\'
    assert join_command_line(["x", "C:\\my dir\\"]) == 'x "C:\\my dir\\\\"'
    assert join_command_line(["C:\\Program Files\\t.exe"]) == '"C:\\Program Files\\t.exe"'


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_join_round_trips_the_corpus(name):
    for argv in (["netsh", name], ["netsh", "name=" + name, name, "x"]):
        line = join_command_line(argv)
        for variant in VARIANTS:
            assert split_command_line(line, variant=variant) == argv


@pytest.mark.parametrize("name", UNREPRESENTABLE)
def test_unrepresentable_values_are_rejected(name):
    with pytest.raises(ValidationError, match=r"policy\[1\].*NUL, carriage return or line feed"):
        join_command_line(["netsh", name], option="policy")
    with pytest.raises(ValidationError):
        powershell_native_args([name])


def test_program_name_with_a_quote_is_rejected():
    with pytest.raises(ValidationError, match="program name"):
        join_command_line(['ne"tsh', "x"])


def test_overlong_command_line_is_rejected():
    with pytest.raises(ValidationError, match="at most 32766"):
        join_command_line(["netsh", "x" * 40000])


# ---- PowerShell 5.1 ----

def test_emulation_matches_the_reports_of_issue_1995():
    # PowerShell/PowerShell#1995, 2017-05-22: 'A \"B' is wrapped, 'A\" B' is not (and splits).
    assert emulate_ps51_native_command_line(['A \\"B']) == '"A \\"B"'
    assert emulate_ps51_native_command_line(['A\\" B']) == 'A\\" B'
    assert split_command_line('A\\" B', False) == ['A"', "B"]
    # Empty strings are dropped; a trailing backslash escapes the added quote.
    assert emulate_ps51_native_command_line(["a", "", "b"]) == "a b"
    assert emulate_ps51_native_command_line(["C:\\a b\\"]) == '"C:\\a b\\"'
    assert emulate_ps51_native_command_line(["x"], program="C:\\W\\netsh.exe") == '"C:\\W\\netsh.exe" x'


def _ps_round_trip(argv):
    text = powershell_native_args(argv)
    values = powershell_argument_values(text)
    line = emulate_ps51_native_command_line(values)
    return text, [split_command_line(line, False, variant) for variant in VARIANTS]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_powershell_round_trips_the_corpus(name):
    argv = ["ipsec", "static", "add", "policy", "name=" + name, name, "", "description=" + name]
    text, splits = _ps_round_trip(argv)
    assert all(split == argv for split in splits)
    assert "\n" not in text


def test_powershell_text_reads_like_the_argument():
    assert powershell_native_args(["add", "name=Block UDP 1434 Filter", "it's", "$x"]) == \
        "'add' 'name=Block UDP 1434 Filter' 'it''s' '$x'"
    assert powershell_native_args(["C:\\my dir\\"]) == "'C:\\my dir\\\\'"
    assert powershell_native_args([""]) == "'\"\"'"


@pytest.mark.parametrize("name", PS51_UNDELIVERABLE)
def test_powershell_rejects_what_it_cannot_deliver(name):
    with pytest.raises(ValidationError, match="PowerShell 5.1"):
        powershell_native_args(["x", name], option="rule")
    # The plain command line can still carry it.
    assert split_command_line(join_command_line(["x", name])) == ["x", name]


def test_powershell_literals_are_single_verbatim_strings():
    """An independent PowerShell parser (tree-sitter) sees one verbatim string per argument."""
    ts = pytest.importorskip("tree_sitter")
    tsp = pytest.importorskip("tree_sitter_powershell")
    parser = ts.Parser(ts.Language(tsp.language()))
    names = [n for n in HOSTILE_NAMES if not any(c in n for c in "\u2018\u2019\u201a\u201b")]
    source = ("netsh " + powershell_native_args(names)).encode("utf-8")
    tree = parser.parse(source)
    assert not tree.root_node.has_error
    literals = []

    def walk(node):
        if node.type == "string_literal":
            literals.append(node)
            return
        for child in node.children:
            walk(child)
    walk(tree.root_node)
    assert len(literals) == len(names)
    assert all(lit.children[0].type == "verbatim_string_characters" for lit in literals)


def test_powershell_literal_doubles_every_single_quote_kind():
    value = "a'b\u2018c\u2019d"
    assert powershell_literal(value) == "'a''b\u2018\u2018c\u2019\u2019d'"
    assert powershell_argument_values(powershell_literal(value) + " 'x'") == [value, "x"]
    with pytest.raises(ValueError):
        powershell_argument_values("'open")


TRICKY = st.text(alphabet='ab "\\\t\'&%^|<>\u3000\u00a0é日🔥$`', max_size=14)


def _ps51_cannot(arg):
    """The theory of _ps_encode: undeliverable iff every space/tab follows an odd number of
    quotes, at least one exists, and no other whitespace can make PowerShell wrap it."""
    quotes, separators, others = 0, [], False
    for c in arg:
        if c == '"':
            quotes += 1
        elif c in " \t":
            separators.append(quotes % 2)
        elif c in "\u3000\u00a0":
            others = True
    return bool(separators) and all(separators) and not others


@settings(max_examples=400, deadline=None)
@given(st.lists(TRICKY, max_size=4))
def test_property_join_split(argv):
    line = join_command_line(["prog"] + argv)
    for variant in VARIANTS:
        assert split_command_line(line, variant=variant) == ["prog"] + argv


@settings(max_examples=400, deadline=None)
@given(TRICKY)
def test_property_powershell_exact_or_rejected(arg):
    if _ps51_cannot(arg):
        with pytest.raises(ValidationError):
            powershell_native_args([arg])
        return
    _, splits = _ps_round_trip(["a", arg, "b"])
    assert all(split == ["a", arg, "b"] for split in splits)


# ---- cmd.exe ----

@pytest.mark.parametrize("value,bad", [
    ("100%", "%"), ("%PATH%", "%"), ("!x!", "!"), ('say "hi"', '"'), ("a\nb", "\n"),
    ("a\rb", "\r"), ("a\x00b", "\x00"), ("bell\x07", "\x07"),
])
def test_cmd_safe_rejects_what_cmd_reinterprets(value, bad):
    with pytest.raises(ValidationError) as err:
        cmd_safe("rules[0].name", value)
    assert str(err.value).startswith("rules[0].name: ")
    assert repr(bad) in str(err.value)


@pytest.mark.parametrize("value", ["Block UDP 1434", "a&b|c<d>e^f(g)", "tab\there", "日本語", "x\\"])
def test_cmd_safe_accepts_and_join_protects(value):
    assert cmd_safe("name", value) == value
    line = join_command_line(["ipsecpol", "-p", value])
    # Outside double quotes cmd.exe would act on these; join puts every such value inside quotes.
    assert all(c not in "&|<>^()" or _inside_quotes(line, i) for i, c in enumerate(line))
    assert split_command_line(line) == ["ipsecpol", "-p", value]


def _inside_quotes(line, index):
    return line[:index].count('"') % 2 == 1


def test_cmd_safe_checks_the_code_page():
    assert cmd_safe("name", "Größe", encoding="cp850") == "Größe"
    with pytest.raises(ValidationError, match="cp437"):
        cmd_safe("name", "日本語", encoding="cp437")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40))
def test_the_plain_ascii_shortcut_gives_what_the_round_trip_gives(arg):
    # Printable ASCII without space: the shortcut must agree with the full round trip, which finds the
    # value PowerShell 5.1 passes intact (wrapped or not), or refuses.
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import quoting
    assert quoting._ps_value_for("a", arg) == quoting._ps_value_checked("a", arg)


@pytest.mark.parametrize("arg", ["name=Block", "--%", "-", "a=b", "x" * 300, "dstport=1434", "'"] + list(HOSTILE_NAMES))
def test_the_plain_ascii_shortcut_agrees_on_the_hostile_names(arg):
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import quoting
    try:
        expected = quoting._ps_value_checked("a", arg)
    except ValidationError:
        with pytest.raises(ValidationError):
            quoting._ps_value_for("a", arg)
        return
    assert quoting._ps_value_for("a", arg) == expected
