"""The few .NET types winsim's PowerShell knows, as the collection's scripts use them.

System.Convert (FromBase64String, ToBase64String), System.Text.Encoding (UTF8, Unicode: GetString,
GetBytes), System.BitConverter (ToString), System.Security.Cryptography.SHA1CryptoServiceProvider
(ComputeHash), System.Threading.Mutex (WaitOne, ReleaseMutex, Close, Dispose; winsim/shell/mutexes.py)
and System.Threading.AbandonedMutexException (for `catch [...]`). A type outside this list is
"Unable to find type" (PowerShell's own error), a member or overload outside it is a loud winsim
error: never a guess.

Methods raise DotNetException with .NET's own message; the interpreter wraps it as PowerShell does
("Exception calling ..."). Messages are .NET Framework 4.x's (CLR 4, under PowerShell 5.1); where
CLR 2.0 (PowerShell 2.0) words them differently `clr2` holds its text ([I] unless noted).
"""
import base64
import binascii
import hashlib
import re
from typing import Any, Callable, Dict, List, Optional


class Bytes(list):
    """A System.Byte[]: a PowerShell array whose elements are 0..255."""


class DotNetException(Exception):
    """A .NET exception: full type name, message, and the type chain `catch [T]` matches."""

    def __init__(self, type_name: str, message: str, clr2: Optional[str] = None):
        super().__init__(message)
        self.type_name, self.message, self.clr2 = type_name, message, clr2

    @property
    def short_name(self) -> str:
        return self.type_name.rsplit(".", 1)[-1]

    @property
    def chain(self) -> List[str]:
        chain, name = [], self.type_name
        while name:
            chain.append(name)
            name = _BASES.get(name, "System.Exception" if name != "System.Exception" else "")
        return chain

    def text(self, major: int) -> str:
        return self.clr2 if major < 3 and self.clr2 else self.message


# Base types, from each exception's "Inheritance" line in its Microsoft docs page.
_BASES = {
    "System.SystemException": "System.Exception",
    "System.ApplicationException": "System.Exception",
    "System.ArgumentException": "System.SystemException",
    "System.ArgumentNullException": "System.ArgumentException",
    "System.ArgumentOutOfRangeException": "System.ArgumentException",
    "System.FormatException": "System.SystemException",
    "System.ObjectDisposedException": "System.InvalidOperationException",
    "System.InvalidOperationException": "System.SystemException",
    "System.Threading.AbandonedMutexException": "System.SystemException",
}


class Unsupported(Exception):
    """Something .NET has and winsim does not emulate: the interpreter fails loudly with it."""


class ArgumentConversion(Exception):
    """PowerShell could not convert a method argument (MethodArgumentConversionInvalidCastArgument)."""

    def __init__(self, param: str, value: str, target: str, detail: str):
        super().__init__(detail)
        self.param, self.value, self.target, self.detail = param, value, target, detail


def null_argument(param: str) -> DotNetException:
    # ArgumentNullException's message: "Value cannot be null." and the parameter on a new line.
    return DotNetException("System.ArgumentNullException",
                           "Value cannot be null.\r\nParameter name: %s" % param)


# -- argument conversions (PowerShell's LanguagePrimitives, as far as these methods need) -----------

def to_bytes(value: Any, param: str) -> Optional[Bytes]:
    if value is None:
        return None
    if isinstance(value, Bytes):
        return value
    items = value if isinstance(value, list) else [value]
    out = Bytes()
    for item in items:
        number = item
        if isinstance(item, str):
            number = int(item.strip()) if re.fullmatch(r"\s*\d+\s*", item) else None
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 255:
            shown = item if isinstance(item, str) else str(item)
            reason = ('Input string was not in a correct format.' if isinstance(item, str)
                      else 'Value was either too large or too small for an unsigned byte.')
            raise ArgumentConversion(param, _display(value), "System.Byte[]",
                                     'Cannot convert value "%s" to type "System.Byte". Error: '
                                     '"%s"' % (shown, reason))
        out.append(number)
    return out


def to_int(value: Any, param: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise ArgumentConversion(param, _display(value), "System.Int32",
                             'Cannot convert value "%s" to type "System.Int32". Error: "Input '
                             'string was not in a correct format."' % _display(value))


def to_bool(value: Any) -> bool:
    # PowerShell's boolean conversion: $null, 0, '' and an empty array are false.
    if isinstance(value, list):
        return bool(value)
    return bool(value)


def _display(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_display(v) for v in value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def _string_arg(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        raise Unsupported("an array where a string argument is expected")
    return _display(value)


# -- objects ----------------------------------------------------------------------------------------

class DotNetObject:
    """An instance: its full type name, properties (lower-case name -> value) and methods
    (lower-case name -> (name as .NET spells it, {argument count: function}))."""

    type_name = "System.Object"

    def properties(self) -> Dict[str, Any]:
        return {}

    def methods(self) -> Dict[str, tuple]:
        return {}

    def __str__(self):
        return self.type_name


class DotNetType:
    """A type literal's value: static members and constructors (argument count -> function)."""

    def __init__(self, full_name: str, static_properties=None, static_methods=None,
                 constructors=None):
        self.full_name = full_name
        self.static_properties: Dict[str, Callable[[], Any]] = static_properties or {}
        self.static_methods: Dict[str, tuple] = static_methods or {}
        self.constructors: Optional[Dict[int, Callable]] = constructors

    def __str__(self):
        return self.full_name


# -- System.Convert ---------------------------------------------------------------------------------

_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")


def from_base64(s: Any) -> Bytes:
    text = _string_arg(s)
    if text is None:
        raise null_argument("s")
    # Convert.FromBase64String skips white space (space, tab, CR, LF) anywhere in the input.
    compact = re.sub(r"[ \t\r\n]", "", text)
    if not _B64.match(compact) or "=" in compact.rstrip("="):
        raise DotNetException(
            "System.FormatException",
            "The input is not a valid Base-64 string as it contains a non-base 64 character, more "
            "than two padding characters, or an illegal character among the padding characters. ",
            clr2="Invalid character in a Base-64 string.")
    if len(compact) % 4:
        raise DotNetException("System.FormatException",
                              "Invalid length for a Base-64 char array or string.",
                              clr2="Invalid length for a Base-64 char array.")
    try:
        return Bytes(base64.b64decode(compact, validate=True))
    except binascii.Error:      # what the checks above let through ('a===' and the like)
        raise DotNetException("System.FormatException",
                              "The input is not a valid Base-64 string as it contains a non-base "
                              "64 character, more than two padding characters, or an illegal "
                              "character among the padding characters. ",
                              clr2="Invalid character in a Base-64 string.") from None


def to_base64(data: Any) -> str:
    raw = to_bytes(data, "inArray")
    if raw is None:
        raise null_argument("inArray")
    return base64.b64encode(bytes(raw)).decode("ascii")


CONVERT = DotNetType("System.Convert", static_methods={
    "frombase64string": ("FromBase64String", {1: from_base64}),
    "tobase64string": ("ToBase64String", {1: to_base64}),
})


# -- System.Text.Encoding -----------------------------------------------------------------------------

class Encoding(DotNetObject):
    def __init__(self, type_name: str, codec: str, web_name: str):
        self.type_name, self.codec, self.web_name = type_name, codec, web_name

    def properties(self):
        return {"webname": self.web_name, "encodingname": self.web_name}

    def methods(self):
        return {"getstring": ("GetString", {1: self.get_string}),
                "getbytes": ("GetBytes", {1: self.get_bytes})}

    def get_string(self, data: Any) -> str:
        raw = to_bytes(data, "bytes")
        if raw is None:
            raise null_argument("bytes")
        # Invalid sequences become U+FFFD (the default replacement fallback); a BOM is kept as
        # U+FEFF (GetString does not skip a preamble).
        return bytes(raw).decode(self.codec, "replace")

    def get_bytes(self, s: Any) -> Bytes:
        text = _string_arg(s)
        if text is None:
            raise null_argument("s")     # [I] the overload PowerShell picks for $null
        # A lone surrogate is encoded as U+FFFD, as the replacement fallback does.
        clean = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return Bytes(clean.encode(self.codec))


UTF8 = Encoding("System.Text.UTF8Encoding", "utf-8", "utf-8")
UNICODE = Encoding("System.Text.UnicodeEncoding", "utf-16-le", "utf-16")
ENCODING = DotNetType("System.Text.Encoding",
                      static_properties={"utf8": lambda: UTF8, "unicode": lambda: UNICODE})


# -- System.BitConverter --------------------------------------------------------------------------------

def bit_converter_to_string(data: Any) -> str:
    raw = to_bytes(data, "value")
    if raw is None:
        raise null_argument("value")
    # "Converts ... to its equivalent hexadecimal string representation": pairs separated by
    # hyphens, upper case ("BitConverter.ToString Method").
    return "-".join("%02X" % b for b in raw)


BIT_CONVERTER = DotNetType("System.BitConverter", static_methods={
    "tostring": ("ToString", {1: bit_converter_to_string})})


# -- System.Security.Cryptography.SHA1CryptoServiceProvider --------------------------------------

class Sha1(DotNetObject):
    type_name = "System.Security.Cryptography.SHA1CryptoServiceProvider"

    def __init__(self):
        self.hash: Optional[Bytes] = None
        self.disposed = False

    def properties(self):
        return {"hashsize": 160, "hash": self.hash}

    def methods(self):
        return {"computehash": ("ComputeHash", {1: self.compute_hash}),
                "clear": ("Clear", {0: self.dispose}),
                "dispose": ("Dispose", {0: self.dispose})}

    def compute_hash(self, data: Any) -> Bytes:
        if self.disposed:
            raise DotNetException("System.ObjectDisposedException",
                                  "Safe handle has been closed")   # [I] the exact text
        raw = to_bytes(data, "buffer")
        if raw is None:
            raise null_argument("buffer")
        self.hash = Bytes(hashlib.sha1(bytes(raw)).digest())
        return Bytes(self.hash)

    def dispose(self):
        self.disposed = True


SHA1_CSP = DotNetType(Sha1.type_name, constructors={0: Sha1})


# -- System.Threading.Mutex -----------------------------------------------------------------------

class Mutex(DotNetObject):
    """A Mutex object: one handle of the process on a kernel mutex (winsim/shell/mutexes.py)."""

    type_name = "System.Threading.Mutex"

    def __init__(self, handle):
        self.handle = handle

    def methods(self):
        return {"waitone": ("WaitOne", {0: lambda: self.wait_one(-1), 1: self.wait_one}),
                "releasemutex": ("ReleaseMutex", {0: self.handle.release}),
                "close": ("Close", {0: self.handle.close}),
                "dispose": ("Dispose", {0: self.handle.close})}

    def wait_one(self, timeout: Any) -> bool:
        ms = to_int(timeout, "millisecondsTimeout")
        if ms < -1:
            # WaitHandle.WaitOne(Int32): "millisecondsTimeout is a negative number other than -1".
            raise DotNetException("System.ArgumentOutOfRangeException",
                                  "Number must be either non-negative and less than or equal to "
                                  "Int32.MaxValue or -1.\r\nParameter name: millisecondsTimeout")
        return self.handle.wait(ms)


def mutex_type(open_mutex: Callable[[bool, Optional[str]], Any]) -> DotNetType:
    """Mutex(), Mutex(initiallyOwned), Mutex(initiallyOwned, name) on the command's mutex session."""
    def make(owned=False, name=None):
        if name is not None and not isinstance(name, str):
            name = _display(name)
        return Mutex(open_mutex(to_bool(owned), name or None))
    return DotNetType(Mutex.type_name, constructors={0: make, 1: make, 2: make})


ABANDONED_MUTEX = DotNetType("System.Threading.AbandonedMutexException")


def resolve(name: str, open_mutex: Callable) -> Optional[DotNetType]:
    """A type by name as PowerShell's type resolver finds it: case-insensitive, the name as written,
    then with `System.` in front (so [Convert] and [Text.Encoding] work; about_Type_Accelerators)."""
    known = {t.full_name.lower(): t for t in (CONVERT, ENCODING, BIT_CONVERTER, SHA1_CSP,
                                              ABANDONED_MUTEX)}
    for candidate in (name.lower(), "system." + name.lower()):
        if candidate in known:
            return known[candidate]
        if candidate == "system.threading.mutex":
            return mutex_type(open_mutex)
    return None
