"""The cmdlets winsim's PowerShell knows, each with its parameters as PowerShell binds them."""
from typing import TYPE_CHECKING, Callable, Optional

from . import dotnet
from .dotnet import DotNetException
from .runtime import PSError, PSVariable, enumerate_output, to_str

if TYPE_CHECKING:
    from .interpreter import Interpreter

# ---------------------------------------------------------------------------------------------
# Cmdlets


_COMMON_SWITCHES = ("verbose", "debug")     # accepted by every cmdlet (about_CommonParameters)


class CmdletSpec:
    def __init__(self, full_name, params=(), switches=(), positional=(), aliases=None,
                 remaining=None):
        self.full_name = full_name
        self.remaining = remaining and remaining.lower()   # ValueFromRemainingArguments
        self.params = [p.lower() for p in params]
        self.switches = [s.lower() for s in switches]
        self.positional = [p.lower() for p in positional]
        self.aliases = aliases or {}


class Cmdlet:
    def __init__(self, spec: Callable[["Interpreter"], CmdletSpec], run):
        self.spec, self.run = spec, run


def _write_output(interp, bound, data, out, error):
    for obj in enumerate_output(bound.get("inputobject")):
        out(obj)
    for obj in data or []:
        out(obj)


def _write_host(interp, bound, data, out, error):
    # Write-Host goes to the host, not the pipeline: redirection and capture do not take it.
    separator = to_str(bound["separator"]) if "separator" in bound else " "
    text = separator.join(to_str(o) for o in enumerate_output(bound.get("object")))
    interp.write_out(text + ("" if bound.get("nonewline") else "\r\n"))


def _write_warning(interp, bound, data, out, error):
    # The console host shows the warning stream as "WARNING: text" on its output.
    interp.write_out("WARNING: %s\r\n" % to_str(bound.get("message")))


def _write_verbose(interp, bound, data, out, error):
    if bound.get("verbose"):
        interp.write_out("VERBOSE: %s\r\n" % to_str(bound.get("message")))


def _write_error(interp, bound, data, out, error):
    message = to_str(bound.get("message"))
    error(PSError(message, "Microsoft.PowerShell.Commands.WriteErrorException", "NotSpecified",
                  "", "WriteErrorException", type_name=""))


def _out_null(interp, bound, data, out, error):
    return None


def _out_string(interp, bound, data, out, error):
    items = list(data or []) + enumerate_output(bound.get("inputobject"))
    out("".join(interp.format_object(o) + "\r\n" for o in items))


def _path_of(interp, bound, error) -> Optional[str]:
    path = bound.get("literalpath", bound.get("path"))
    if path is None:
        error(PSError("Cannot bind argument to parameter 'Path' because it is null.",
                      "ParameterArgumentValidationErrorNullNotAllowed", "InvalidData", "",
                      "ParameterBindingValidationException"))
        return None
    return to_str(path)


def _not_found(path: str) -> PSError:
    return PSError("Cannot find path '%s' because it does not exist." % path,
                   "PathNotFound", "ObjectNotFound", path, "ItemNotFoundException")


def _set_content(interp, bound, data, out, error, append=False):
    path = _path_of(interp, bound, error)
    if path is None:
        return
    values = enumerate_output(bound.get("value")) if "value" in bound else list(data or [])
    name = to_str(bound.get("encoding") or "Default")
    if name.lower() not in _FILE_ENCODINGS:
        error(PSError("Cannot bind parameter 'Encoding'. Cannot convert value \"%s\" to type "
                      "\"Microsoft.PowerShell.Commands.FileSystemCmdletProviderEncoding\". Error: "
                      "\"Unable to match the identifier name %s to a valid enumerator name. "
                      "Specify one of the following enumerator names and try again: %s\""
                      % (name, name, ", ".join(_ENCODING_NAMES)),
                      "CannotConvertArgumentNoMessage", "InvalidArgument", "",
                      "ParameterBindingException"))
        return
    # The file keeps text, but only what its encoding can hold: Windows PowerShell's Set-Content
    # writes the ANSI code page by default (Windows-1252 on an en-US system, [I] other locales),
    # so other characters become '?' as .NET's encoder replaces them.
    codec = _FILE_ENCODINGS[name.lower()]
    lines = [to_str(v) for v in values]
    if codec:
        lines = [line.encode(codec, "replace").decode(codec) for line in lines]
    interp.file_write(path, lines, append)


_ENCODING_NAMES = ("Unknown", "String", "Unicode", "Byte", "BigEndianUnicode", "UTF8", "UTF7",
                   "UTF32", "Ascii", "Default", "Oem", "BigEndianUTF32")
# FileSystemCmdletProviderEncoding -> the codec that loses characters (None: all of Unicode).
_FILE_ENCODINGS = {name.lower(): None for name in _ENCODING_NAMES}
_FILE_ENCODINGS.update({"ascii": "ascii", "default": "cp1252", "oem": "cp437"})


def _get_content(interp, bound, data, out, error):
    path = _path_of(interp, bound, error)
    if path is None:
        return
    key = interp.fs_key(path)
    if key is None:
        error(_not_found(path))
        return
    text = interp.fs[key]
    if bound.get("raw"):
        out(text)
        return
    for line in text.splitlines():
        out(line)


def _remove_item(interp, bound, data, out, error):
    path = _path_of(interp, bound, error)
    if path is None:
        return
    key = interp.fs_key(path)
    if key is None:
        error(_not_found(path))
        return
    del interp.fs[key]


def _test_path(interp, bound, data, out, error):
    path = _path_of(interp, bound, error)
    if path is not None:
        out(interp.fs_key(path) is not None or interp.path_exists(path))


def _set_strict_mode(interp, bound, data, out, error):
    if bound.get("off"):
        interp.strict = False
    elif "version" in bound:
        interp.strict = True
    else:
        error(PSError("Parameter set cannot be resolved using the specified named parameters.",
                      "AmbiguousParameterSet,Microsoft.PowerShell.Commands.SetStrictModeCommand",
                      "InvalidArgument", "", "ParameterBindingException"))


def _get_variable(interp, bound, data, out, error):
    for name in enumerate_output(bound.get("name")):
        key = to_str(name).lower()
        if key in interp.vars:
            out(PSVariable(to_str(name), interp.vars[key]))
        else:
            error(PSError("Cannot find a variable with the name '%s'." % to_str(name),
                          "VariableNotFound,Microsoft.PowerShell.Commands.GetVariableCommand",
                          "ObjectNotFound", to_str(name), "ItemNotFoundException"))


def _start_sleep(interp, bound, data, out, error):
    # No real waiting: the host's simulated clock moves instead.
    try:
        seconds = float(to_str(bound.get("seconds") or 0)) + \
            float(to_str(bound.get("milliseconds") or 0)) / 1000
    except ValueError:
        error(PSError("Cannot bind parameter 'Seconds'. Cannot convert value \"%s\" to type "
                      "\"System.Int32\"." % to_str(bound.get("seconds")),
                      "CannotConvertArgumentNoMessage,"
                      "Microsoft.PowerShell.Commands.StartSleepCommand",
                      "InvalidArgument", "", "ParameterBindingException"))
        return
    interp.sleep(seconds)


def _invoke_expression(interp, bound, data, out, error):
    commands = enumerate_output(bound["command"]) if "command" in bound else list(data or [])
    if not commands or any(c is None for c in commands):
        raise PSError("Cannot bind argument to parameter 'Command' because it is null.",
                      "ParameterArgumentValidationErrorNullNotAllowed,"
                      "Microsoft.PowerShell.Commands.InvokeExpressionCommand", "InvalidData", "",
                      "ParameterBindingValidationException", type_name="",
                      prefix="Invoke-Expression : ", activity="Invoke-Expression")
    emit = None if interp.cmdlet_to_console else out
    for command in commands:
        interp.run_inline(to_str(command), emit)


def _new_object(interp, bound, data, out, error):
    def fail(message, fqid, category, reason):
        return PSError(message, fqid + ",Microsoft.PowerShell.Commands.NewObjectCommand",
                       category, "", reason, type_name="", prefix="New-Object : ",
                       activity="New-Object")
    if "comobject" in bound or "property" in bound:
        raise dotnet.Unsupported("New-Object -ComObject or -Property")
    name = to_str(bound.get("typename"))
    found = dotnet.resolve(name, interp.open_mutex)
    if found is None:
        raise fail("Cannot find type [%s]: %s the assembly containing this type is loaded."
                   % (name, "verify that" if interp.major >= 3 else "make sure that"),
                   "TypeNotFound", "InvalidType", "PSArgumentException")
    args = bound.get("argumentlist")
    args = [] if args is None else (list(args) if isinstance(args, list) else [args])
    ctor = (found.constructors or {}).get(len(args))
    if ctor is None:
        raise dotnet.Unsupported("New-Object [%s] with %d argument(s)" % (found.full_name,
                                                                           len(args)))
    try:
        out(ctor(*args))
    except DotNetException as exc:
        raise fail('Exception calling ".ctor" with "%d" argument(s): "%s"'
                   % (len(args), exc.text(interp.major)), "ConstructorInvokedThrowException",
                   "InvalidOperation", "MethodInvocationException") from None


_PATH = ("Path", "LiteralPath")
CMDLETS = {}
for _names, _spec, _run in [
    (("write-output", "echo", "write"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteOutputCommand", ["InputObject"],
                          ["NoEnumerate"], ["InputObject"], remaining="InputObject"),
     _write_output),
    (("write-host",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteHostCommand",
                          ["Object", "ForegroundColor", "BackgroundColor", "Separator"],
                          ["NoNewline"], ["Object"], remaining="Object"), _write_host),
    (("write-error",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteErrorCommand", ["Message"], [],
                          ["Message"]), _write_error),
    (("write-warning",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteWarningCommand", ["Message"], [],
                          ["Message"]), _write_warning),
    (("write-verbose",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.WriteVerboseCommand", ["Message"],
                          ["Verbose"], ["Message"]), _write_verbose),
    (("out-null",), lambda i: CmdletSpec("Microsoft.PowerShell.Commands.OutNullCommand",
                                         ["InputObject"]), _out_null),
    (("out-string",), lambda i: CmdletSpec("Microsoft.PowerShell.Commands.OutStringCommand",
                                           ["InputObject", "Width"], ["Stream"]), _out_string),
    (("set-content", "sc"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.SetContentCommand",
                          _PATH + ("Value", "Encoding"), ["Force", "NoNewline"] if i.major >= 5
                          else ["Force"], ["Path", "Value"], {"pspath": "literalpath"}),
     _set_content),
    (("add-content", "ac"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.AddContentCommand",
                          _PATH + ("Value", "Encoding"), ["Force"], ["Path", "Value"]),
     lambda *a: _set_content(*a, append=True)),
    (("get-content", "gc", "cat", "type"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.GetContentCommand",
                          _PATH + ("Encoding", "TotalCount", "ReadCount"),
                          ["Raw", "Force"] if i.major >= 3 else ["Force"], ["Path"]),
     _get_content),
    (("remove-item", "del", "rm", "ri", "erase", "rd", "rmdir"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.RemoveItemCommand", _PATH,
                          ["Force", "Recurse"], ["Path"]), _remove_item),
    (("test-path",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.TestPathCommand", _PATH + ("PathType",),
                          ["IsValid"], ["Path"]), _test_path),
    (("set-strictmode",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.SetStrictModeCommand", ["Version"],
                          ["Off"], []), _set_strict_mode),
    (("get-variable", "gv"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.GetVariableCommand", ["Name", "Scope"],
                          ["ValueOnly"], ["Name"]), _get_variable),
    (("invoke-expression", "iex"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.InvokeExpressionCommand", ["Command"],
                          [], ["Command"]), _invoke_expression),
    (("new-object",),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.NewObjectCommand",
                          ["TypeName", "ArgumentList", "ComObject", "Property"], ["Strict"],
                          ["TypeName", "ArgumentList"], {"args": "argumentlist"}), _new_object),
    (("start-sleep", "sleep"),
     lambda i: CmdletSpec("Microsoft.PowerShell.Commands.StartSleepCommand",
                          ["Seconds", "Milliseconds"], [], ["Seconds"]), _start_sleep),
]:
    for _name in _names:
        CMDLETS[_name] = Cmdlet(_spec, _run)

