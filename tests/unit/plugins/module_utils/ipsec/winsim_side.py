"""Inputs for the engine's readers made by winsim's own code (winsim shares no code with the
engine), so that a test decodes what another writer wrote instead of round-tripping one codec."""
from winsim.shell.powershell.parser import ArgValue, Command, Lit, Parser, Pipeline


def powershell_argument_values(text: str) -> list:
    """The values winsim's PowerShell parser finds in `text`, a run of arguments given to a native
    command (`netsh <text>`); a ValueError for anything but plain literals."""
    try:
        statements = Parser("netsh " + text).parse_script()
    except Exception as err:            # winsim's ParseError carries PowerShell's own message
        raise ValueError("%s: %r" % (err, text)) from None
    [pipeline] = statements
    assert isinstance(pipeline, Pipeline)
    [command] = pipeline.elements
    assert isinstance(command, Command)
    values = []
    for element in command.elements:
        if not (isinstance(element, ArgValue) and isinstance(element.node, Lit)):
            raise ValueError("not a literal argument in %r" % text)
        values.append(element.node.value)
    return values
