"""`ldifde`: export part of the domain's directory to an LDIF file. Export only.

Grammar: learn.microsoft.com "ldifde" [D]: `-f file` `-s server` `-d baseDN` `-p Base|OneLevel|Subtree`
`-r LDAP-filter` `-l attribute,list`; `-u` (Unicode file) is accepted and changes nothing here, since
winsim's files are text [I]. Switch letters are case-insensitive and may start with `-` or `/` [I].
Filters: RFC 4515 (`(a=v)` case-insensitive, `(a=*)`, substrings `(a=x*y)`, `&`, `|`, `!`).
The file: RFC 2849 LDIF, held to a real export (tests/fixtures/captures/
ldifde_export_deleted_objects_ws2019.ldf, [V]): each entry is `dn:`, `changetype: add`, then
`attr: value` lines, and a blank line. The dn line is never folded (a 101-character one is kept
whole); an attribute line that would be longer than 79 characters puts its whole value on
continuation lines, each a space and up to 78 characters (`distinguishedName:` / ` CN=...`), [V];
the limit is [V] too: a Microsoft-published LDIF keeps a 79-character line and breaks an
80-character one (captures/ldf_microsoft_adlds_schema_excerpt.ldf; that writer folds dn lines
as well, ldifde's export above does not, and winsim follows ldifde). A value that
is not a SAFE-STRING, or is binary, is written `attr:: base64` ([V] objectSid; ANSI files carry
non-ASCII values as base64, [D] learn.microsoft.com "LDIF Scripts"). The directory is
`DomainStore.ldap_entries()` (winsim/domain.py).
Console text: the success lines match two real exports (captures/ldifde_export_console_*, [V]),
one dot per entry after "Writing out entries". The failure texts, "No Entries found" and the
exit code 1 on failure are [I]: not verified on real Windows.
"""
import base64
import re
from typing import Callable, Dict, List, Optional, Sequence

from ..result import Result

VALUED = {"f": "file", "s": "server", "d": "base", "p": "scope", "r": "filter", "l": "attributes"}
# Documented switches that winsim does not emulate ([D] ldifde syntax), refused by name.
DOCUMENTED = {"i": "import mode", "c": "DN replacement", "v": "verbose mode", "j": "log file path",
              "t": "port", "o": "omitted attributes", "g": "paged search off", "m": "SAM logic",
              "n": "binary values off", "k": "ignore errors", "a": "simple bind", "b": "bind as user",
              "e": "export mode", "y": "lazy commit", "x": "deleted objects", "z": "continue on errors"}
SCOPES = {"base": "Base", "onelevel": "OneLevel", "subtree": "Subtree"}
WIDTH = 79
USAGE = ("winsim emulates ldifde export: -f file [-s server] [-d baseDN] [-p Base|OneLevel|Subtree] "
         "[-r filter] [-l attributes] [-u]")


class LdifdeError(Exception):
    pass


def run(host, argv: Sequence[str], stdin: str = "") -> Result:
    try:
        options = parse_args(argv[1:])
    except LdifdeError as e:
        return Result("%s\n%s\n" % (e, USAGE), "", 1)
    domain = host.domain
    # Without -s a member binds to a DC of its own domain; "(null)" for a host with none is [I].
    server = options.get("server") or (domain.controller if domain is not None else "(null)")
    out = ['Connecting to "%s"' % server, "Logging in as current user using SSPI"]
    if domain is None or not domain.serves(server):
        # A host outside the domain finds no DC; another server name answers nobody [I].
        out += ['Error connecting to "%s"' % server, "The server is not operational.",
                "An error has occurred in the program"]
        return Result(_text(out), "", 1)
    path = options["file"]
    out += ["Exporting directory to file %s" % path, "Searching for entries..."]
    base = options.get("base") or domain.naming_context()
    try:
        matches = parse_filter(options.get("filter", "(objectClass=*)"))
        entries = domain.ldap_entries()
        if not any(dn_key(e.dn) == dn_key(base) for e in entries):
            raise LdifdeError("No Such Object: the base DN %s does not exist in %s." % (base, domain.name))
    except LdifdeError as e:
        return Result(_text(out + [str(e), "An error has occurred in the program"]), "", 1)
    chosen = [e for e in entries if in_scope(e.dn, base, options["scope"]) and matches(e)]
    wanted = {a.strip().casefold() for a in options.get("attributes", "").split(",") if a.strip()}
    _write(host.fs, path, ldif(chosen, wanted or None))
    if chosen:
        out += ["Writing out entries" + "." * len(chosen), "%d entries exported" % len(chosen)]
    else:
        out += ["No Entries found"]
    return Result(_text(out + ["", "The command has completed successfully"]), "", 0)


def _text(lines: List[str]) -> str:
    return "".join(line + "\n" for line in lines)


def parse_args(args: Sequence[str]) -> Dict[str, str]:
    options: Dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        letter = arg[1:].lower() if len(arg) == 2 and arg[0] in "-/" else None
        if letter in VALUED:
            if i + 1 >= len(args):
                raise LdifdeError("ldifde: option %s needs a value." % arg)
            options[VALUED[letter]] = args[i + 1]
            i += 2
        elif letter == "u":         # Unicode file: winsim's files are text already
            i += 1
        elif letter in DOCUMENTED:
            raise LdifdeError("ldifde: option %s (%s) is not emulated by winsim." % (arg, DOCUMENTED[letter]))
        else:
            raise LdifdeError("ldifde: invalid argument '%s'." % arg)
    if "file" not in options:
        raise LdifdeError("ldifde: -f <file> is required.")
    scope = options.get("scope", "subtree")
    if scope.casefold() not in SCOPES:
        raise LdifdeError("ldifde: invalid scope '%s' for -p; expected %s." % (scope, ", ".join(SCOPES.values())))
    options["scope"] = scope.casefold()
    return options


# -- DNs and scopes -------------------------------------------------------------------------------

def dn_key(dn: str) -> str:
    """A DN compared the LDAP way: case-insensitive, spaces around `,` and `=` ignored."""
    rdns = re.split(r"(?<!\\),", dn)
    return ",".join("=".join(part.strip() for part in rdn.split("=", 1)) for rdn in rdns).casefold()


def in_scope(dn: str, base: str, scope: str) -> bool:
    key, base_key = dn_key(dn), dn_key(base)
    if scope == "base":
        return key == base_key
    if scope == "onelevel":
        return re.split(r"(?<!\\),", key, 1)[-1] == base_key and key != base_key
    return key == base_key or key.endswith("," + base_key)


# -- filters (RFC 4515) ----------------------------------------------------------------------------

Matcher = Callable[[object], bool]
_ITEM = re.compile(r"([A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)(~=|>=|<=|=)([^()]*)")


def parse_filter(text: str) -> Matcher:
    matcher, end = _filter(text.strip(), 0)
    if end != len(text.strip()):
        raise _bad_filter(text)
    return matcher


def _bad_filter(text: str) -> LdifdeError:
    return LdifdeError("The search filter %s is not valid; expected an RFC 4515 filter such as "
                       "(objectClass=ipsecPolicy), (&(a=x)(b=*)), (|...) or (!...)." % text)


def _filter(text: str, i: int):
    if text[i:i + 1] != "(":
        raise _bad_filter(text)
    i += 1
    op = text[i:i + 1]
    if op in ("&", "|"):
        parts: List[Matcher] = []
        i += 1
        while text[i:i + 1] == "(":
            part, i = _filter(text, i)
            parts.append(part)
        if not parts:
            raise _bad_filter(text)
        combine = all if op == "&" else any
        matcher = lambda entry, parts=parts, combine=combine: combine(p(entry) for p in parts)  # noqa: E731
    elif op == "!":
        inner, i = _filter(text, i + 1)
        matcher = lambda entry, inner=inner: not inner(entry)     # noqa: E731
    else:
        m = _ITEM.match(text, i)
        if not m:
            raise _bad_filter(text)
        if m.group(2) != "=":
            raise LdifdeError("The filter operator %s is not emulated by winsim; use = or =*." % m.group(2))
        matcher = _item(m.group(1), m.group(3))
        i = m.end()
    if text[i:i + 1] != ")":
        raise _bad_filter(text)
    return matcher, i + 1


def _unescape(value: str) -> str:
    """RFC 4515 `\\XX` escapes (UTF-8 bytes)."""
    raw = re.sub(rb"\\([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8"))
    return raw.decode("utf-8", "replace")


def _item(attr: str, value: str) -> Matcher:
    if value == "*":
        return lambda entry: bool(entry.values(attr))
    if "*" in value:
        pattern = re.compile(".*".join(re.escape(_unescape(p)) for p in value.split("*")), re.I | re.S)
        return lambda entry: any(isinstance(v, str) and pattern.fullmatch(v) for v in entry.values(attr))
    wanted = _unescape(value)
    return lambda entry: any(v.casefold() == wanted.casefold() if isinstance(v, str) else v == wanted.encode("utf-8")
                             for v in entry.values(attr))


# -- LDIF (RFC 2849) -------------------------------------------------------------------------------

# SAFE-STRING: no NUL, LF or CR; not starting with space, ':' or '<'; ASCII only. A trailing space
# SHOULD be base64 too (RFC 2849 note 8).
_SAFE = re.compile(r"(?:[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*)?")


def ldif_line(name: str, value) -> str:
    if isinstance(value, bytes) or not _SAFE.fullmatch(value) or value.endswith(" "):
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        return "%s:: %s" % (name, base64.b64encode(raw).decode("ascii"))
    return "%s: %s" % (name, value)


def fold(line: str) -> str:
    """An attribute line as ldifde writes it: whole, or `name:`/`name::` and its value on
    continuation lines of a space and WIDTH - 1 characters (module docstring, [V] shape)."""
    if len(line) <= WIDTH:
        return line
    head, _, value = line.partition(" ")
    chunks = [value[i:i + WIDTH - 1] for i in range(0, len(value), WIDTH - 1)]
    return "\r\n ".join([head] + chunks)


def ldif(entries, wanted: Optional[set]) -> str:
    """The entries as an LDIF file (CRLF lines); `wanted` limits the attributes (None: all)."""
    blocks = []
    for entry in entries:
        lines = [ldif_line("dn", entry.dn), "changetype: add"]      # the dn line is never folded
        for name, values in entry.attributes:
            if wanted is None or name.casefold() in wanted:
                lines += [fold(ldif_line(name, v)) for v in values]
        blocks.append("".join(line + "\r\n" for line in lines) + "\r\n")
    return "".join(blocks)


def _write(fs: dict, path: str, text: str) -> None:
    """Into the host's files under the key PowerShell's Get-Content finds (its fs_key rule:
    case-insensitive, `/` and `\\` alike)."""
    want = path.replace("/", "\\").lower()
    key = next((k for k in fs if k.replace("/", "\\").lower() == want), path)
    fs[key] = text
