"""PowerShell's values and error records as winsim's interpreter keeps them."""
from typing import Any, Dict, List, Optional, Tuple

from .dotnet import DotNetException, DotNetObject

# ---------------------------------------------------------------------------------------------
# Errors


class PSError(Exception):
    """An error record. Raised when terminating; written and swallowed when not."""

    def __init__(self, message: str, fqid: str, category: str, target: str = "",
                 reason: str = "RuntimeException", extent: Optional[Tuple[int, int]] = None,
                 prefix: str = "", script_terminating: bool = False, type_name: str = "String",
                 activity: str = "", dotnet: Optional[DotNetException] = None):
        super().__init__(message)
        self.message, self.fqid, self.category, self.target = message, fqid, category, target
        self.reason, self.extent, self.prefix = reason, extent, prefix
        self.script_terminating, self.type_name = script_terminating, type_name
        self.activity = activity        # CategoryInfo's [Activity]: the cmdlet, when one failed
        self.dotnet = dotnet            # the .NET exception inside, for `catch [Type]`
        self.src: Optional[str] = None  # the script text its extent points into (Invoke-Expression)


class ExitScript(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def command_not_found(name: str, extent, invoked: bool, major: int) -> PSError:
    # 3.0+ prefix the record with the command, `& : ` for the call operator; 2.0 has no prefix
    # ([I] from published transcripts of both versions).
    prefix = "" if major < 3 else ("& : " if invoked else name + " : ")
    return PSError("The term '%s' is not recognized as the name of a cmdlet, function, script "
                   "file, or operable program. Check the spelling of the name, or if a path was "
                   "included, verify that the path is correct and try again." % name,
                   "CommandNotFoundException", "ObjectNotFound", name, "CommandNotFoundException",
                   extent, prefix=prefix)


NOT_RECOGNIZED = "is not recognized as the name of a cmdlet"

# ---------------------------------------------------------------------------------------------
# Values


class NativeErrorLine(str):
    """A native command's stderr line brought into the pipeline by `2>&1` (an ErrorRecord in
    PowerShell 5.1: it converts to its text; the first one of a command displays as a full
    NativeCommandError record)."""
    record: Optional[str] = None


class RawText(str):
    """A native command's stdout on its way to the console untouched (no capture, no merge)."""


class Version:
    def __init__(self, text: str):
        parts = [int(p) for p in text.split(".")]
        self.Major, self.Minor = parts[0], parts[1] if len(parts) > 1 else 0
        self.text = text

    def __str__(self):
        return self.text


class PSVariable:
    def __init__(self, name: str, value: Any):
        self.Name, self.Value = name, value


class ExceptionObject(DotNetObject):
    def __init__(self, type_name: str, message: str, inner: Optional["ExceptionObject"] = None):
        self.type_name, self.message, self.inner = type_name, message, inner

    def properties(self):
        return {"message": self.message, "innerexception": self.inner}

    def __str__(self):
        return "%s: %s" % (self.type_name, self.message)


class ErrorRecord(DotNetObject):
    """`$_` in a catch block: the error record (about_Try_Catch_Finally)."""

    type_name = "System.Management.Automation.ErrorRecord"

    def __init__(self, e: "PSError", major: int):
        self.e = e
        inner = None
        if e.dotnet is not None:
            inner = ExceptionObject(e.dotnet.type_name, e.dotnet.text(major))
        name = e.reason if "." in e.reason else "System.Management.Automation." + e.reason
        self.exception = ExceptionObject(name, e.message, inner)

    def properties(self):
        return {"exception": self.exception, "fullyqualifiederrorid": self.e.fqid,
                "targetobject": self.e.target or None}

    def __str__(self):
        return self.e.message


def members(obj: Any) -> Dict[str, Any]:
    if isinstance(obj, DotNetObject):
        return obj.properties()
    if isinstance(obj, dict):
        return {str(k).lower(): v for k, v in obj.items()}
    if isinstance(obj, (Version, PSVariable)):
        return {k.lower(): v for k, v in vars(obj).items() if k[0].isupper()}
    if isinstance(obj, str):
        return {"length": len(obj)}
    if isinstance(obj, list):
        return {"count": len(obj), "length": len(obj)}
    return {}


def _ps_type(v: Any) -> str:
    return {str: "[System.String]", int: "[System.Int32]", bool: "[System.Boolean]",
            list: "[System.Object[]]", dict: "[System.Collections.Hashtable]"}.get(type(v),
                                                                                    type(v).__name__)


def to_str(v: Any) -> str:
    """PowerShell's string conversion (arrays joined by $OFS, a space)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, list):
        return " ".join(to_str(x) for x in v)
    if isinstance(v, PSVariable):
        return "System.Management.Automation.PSVariable"
    return str(v)


def truthy(v: Any) -> bool:
    if isinstance(v, list):
        if not v:
            return False
        return truthy(v[0]) if len(v) == 1 else True
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    if isinstance(v, str):
        return v != ""
    return True


def enumerate_output(v: Any) -> List[Any]:
    """What a value writes to the pipeline: arrays are unrolled, $null writes nothing."""
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def collect(objs: List[Any]) -> Any:
    """A captured pipeline's value: nothing -> $null, one object -> itself, more -> array."""
    if not objs:
        return None
    return objs[0] if len(objs) == 1 else list(objs)


