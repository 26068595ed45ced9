"""reg.exe: query, add and delete over the host's HKLM hive.

`reg query` output is rendered here (`render_query`): the Vista+ layout [I] (four-space
separators, as public Windows 10/11 transcripts show), or on XP/2003 reg.exe 3.0's (a `! REG.EXE
VERSION 3.0` banner and tab separators, [V] two Microsoft docs whose samples keep the tab stops,
tests/fixtures/captures/reg_query_xp_*).
Messages are reg.exe's English texts (`ERROR: The system was unable to find the specified registry
key or value.`, `The operation completed successfully.`); errors go to stderr with exit code 1.
"""
from typing import Dict, List, Optional

from ..result import Result
from ..state.registry import RegistryError, RegTree, RegValue, normalize_key

MISSING = "ERROR: The system was unable to find the specified registry key or value.\n"
DONE = "The operation completed successfully.\n"
DENIED = "ERROR: Access is denied.\n"


class RegError(Exception):
    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def _syntax(op: str) -> RegError:
    return RegError('ERROR: Invalid syntax.\nType "REG %s /?" for usage.\n' % op.upper())


def _options(op: str, args: List[str], flags: Dict[str, bool]) -> Dict[str, Optional[str]]:
    """`/x value` and `/x` switches; flags maps each known switch to whether it takes a value."""
    found: Dict[str, Optional[str]] = {}
    i = 0
    while i < len(args):
        word = args[i].lower()
        if word in ("/reg:32", "/reg:64"):
            i += 1
            continue
        if word not in flags or word in found:
            raise _syntax(op)
        if flags[word]:
            if i + 1 >= len(args):
                raise _syntax(op)
            found[word] = args[i + 1]
            i += 2
        else:
            found[word] = None
            i += 1
    return found


def _key(op: str, text: str) -> str:
    if text.startswith("\\\\"):
        raise RegError("ERROR: winsim does not emulate remote registry access.\n")
    try:
        key = normalize_key(text)
    except RegistryError:
        raise RegError('ERROR: Invalid key name.\nType "REG %s /?" for usage.\n' % op.upper()) from None
    if not key.upper().startswith("HKEY_LOCAL_MACHINE"):
        # winsim's hive is HKLM only; other hives read as empty, writing to them is not emulated.
        if op != "query":
            raise RegError("ERROR: winsim emulates HKLM only.\n")
    return key


def query(host, args: List[str]) -> Result:
    if not args:
        raise _syntax("query")
    key = _key("query", args[0])
    opts = _options("query", args[1:], {"/v": True, "/ve": False, "/s": False})
    if "/v" in opts and "/ve" in opts:
        raise _syntax("query")
    value = opts.get("/v") if "/v" in opts else ("" if "/ve" in opts else None)
    try:
        text = render_query(host.hive.tree, key, recursive="/s" in opts, value=value,
                                style="xp" if host.profile.blob_flavor == "legacy" else "modern")
    except RegistryError:
        raise RegError(MISSING) from None
    return Result(stdout=text)


def _data(value_type: str, text: str, separator: str) -> object:
    if value_type in ("REG_SZ", "REG_EXPAND_SZ"):
        return text
    if value_type == "REG_MULTI_SZ":
        return tuple(part for part in text.split(separator) if part)
    if value_type in ("REG_DWORD", "REG_QWORD"):
        number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        if number < 0 or number >= 2 ** (32 if value_type == "REG_DWORD" else 64):
            raise ValueError(text)
        return number
    if value_type in ("REG_BINARY", "REG_NONE"):
        return bytes.fromhex(text)
    raise ValueError(value_type)


def _confirm(stdin: str) -> bool:
    """reg.exe asks before overwriting or deleting unless /f is given; it reads the answer from
    its input."""
    return stdin.strip().lower() in ("y", "yes")


def add(host, args: List[str], stdin: str) -> Result:
    if not args:
        raise _syntax("add")
    key = _key("add", args[0])
    opts = _options("add", args[1:], {"/v": True, "/ve": False, "/t": True, "/d": True, "/s": True, "/f": False})
    if "/v" in opts and "/ve" in opts:
        raise _syntax("add")
    value_type = (opts.get("/t") or "REG_SZ").upper()
    try:
        data = _data(value_type, opts.get("/d") or "", opts.get("/s") or "\\0")
    except ValueError:
        raise _syntax("add") from None
    name = opts.get("/v") if "/v" in opts else ("" if "/ve" in opts else None)
    tree = host.hive.tree
    prompt = ""
    if name is not None and tree.get(key, name) is not None and "/f" not in opts:
        prompt = "Value %s exists, overwrite(Yes/No)? " % (name or "(Default)")
        if not _confirm(stdin):
            return Result(stdout=prompt + "The operation was canceled by the user.\n")    # [I]
    host.check_fault(lambda: RegError(DENIED))
    if name is None:
        tree.add_key(key)
    else:
        tree.set(key, name, RegValue(value_type, data))
    host.hive.save()
    host.mark_changed()
    return Result(stdout=prompt + DONE)


def delete(host, args: List[str], stdin: str) -> Result:
    if not args:
        raise _syntax("delete")
    key = _key("delete", args[0])
    opts = _options("delete", args[1:], {"/v": True, "/ve": False, "/va": False, "/f": False})
    if len([o for o in ("/v", "/ve", "/va") if o in opts]) > 1:
        raise _syntax("delete")
    tree = host.hive.tree
    if key not in tree:
        raise RegError(MISSING)
    if "/v" in opts or "/ve" in opts:
        name = opts.get("/v") if "/v" in opts else ""
        if tree.get(key, name) is None:
            raise RegError(MISSING)
        prompt = "Delete the registry value %s (Yes/No)? " % (name or "(Default)")
    elif "/va" in opts:
        prompt = "Delete all values under the registry key %s (Yes/No)? " % key
    else:
        prompt = "Permanently delete the registry key %s (Yes/No)? " % key
    if "/f" in opts:
        prompt = ""
    elif not _confirm(stdin):
        return Result(stdout=prompt + "The operation was canceled by the user.\n")        # [I]
    host.check_fault(lambda: RegError(DENIED))
    if "/v" in opts or "/ve" in opts:
        tree.delete_value(key, opts.get("/v") if "/v" in opts else "")
    elif "/va" in opts:
        for value_name in list(tree.values(key)):
            tree.delete_value(key, value_name)
    else:
        tree.delete_key(key)
    host.hive.save()
    host.mark_changed()
    return Result(stdout=prompt + DONE)


def run(host, argv: List[str], stdin: str = "") -> Result:
    op = argv[1].lower() if len(argv) > 1 else ""
    try:
        if op == "query":
            return query(host, argv[2:])
        if op == "add":
            return add(host, argv[2:], stdin)
        if op == "delete":
            return delete(host, argv[2:], stdin)
        if op in ("copy", "save", "restore", "load", "unload", "compare", "export", "import", "flags"):
            raise RegError("ERROR: winsim does not emulate REG %s.\n" % op.upper())
        raise RegError('ERROR: Invalid syntax.\nType "REG /?" for usage.\n')
    except RegError as err:
        return Result(stderr=err.text, rc=1)


def _data_text(value: RegValue, style: str) -> str:
    kind, data = value
    if kind in ("REG_SZ", "REG_EXPAND_SZ"):
        return data
    if kind == "REG_MULTI_SZ":
        return "\\0".join(data) + ("\\0\\0" if style == "xp" else "")     # [I] XP's trailing \0\0
    if kind in ("REG_DWORD", "REG_QWORD"):
        return "0x%x" % data
    return data.hex().upper()


def _value_line(name: str, value: RegValue, style: str) -> str:
    """Vista+: four spaces, name, four spaces, type, four spaces, data (public transcripts, [I]);
    XP/2003 reg.exe 3.0: tabs between, the default value named <NO NAME>
    (tests/fixtures/captures/reg_query_xp_*)."""
    if style == "xp":
        return "    %s\t%s\t%s" % (name or "<NO NAME>", value.type, _data_text(value, style))
    return "    %s    %s    %s" % (name or "(Default)", value.type, _data_text(value, style))


def render_query(tree: RegTree, key: str, recursive: bool = False, value: Optional[str] = None,
                 style: str = "modern") -> str:
    """What `reg query key [/s] [/v name | /ve]` prints, CRLF line ends: per key a blank line, the
    key, its values; without /s the direct subkeys follow as bare lines after a blank line; with
    /s every subkey gets its own block and a blank line ends the output ([I]). Subkeys are
    listed alphabetically (case-insensitive), as the registry enumerates them. A missing key or
    value raises RegistryError."""
    if key not in tree:
        raise RegistryError(MISSING.strip())
    key = normalize_key(key)
    shown = next(k for k in tree.walk(key) if k.casefold() == key.casefold())
    lines: List[str] = ["", "! REG.EXE VERSION 3.0"] if style == "xp" else []
    if value is not None:
        found = tree.get(key, value)
        if found is None:
            raise RegistryError(MISSING.strip())
        name = next(n for n in tree.values(key) if n.casefold() == value.casefold())
        return "\r\n".join(lines + ["", shown, _value_line(name, found, style), ""]) + "\r\n"

    def block(current: str) -> None:
        lines.extend(["", current])
        lines.extend(_value_line(n, v, style) for n, v in tree.values(current).items())
        children = sorted(tree.subkeys(current), key=str.casefold)
        if recursive:
            for child in children:
                block(child)
        else:
            lines.append("")
            lines.extend(children)

    block(shown)
    if recursive:
        lines.append("")
    return "\r\n".join(lines) + "\r\n"
