"""Injected failures (SimHost.configure(fail_step=k)) for tools whose errors are whole Results."""
from ..result import Result


class ToolFault(Exception):
    """An injected failure carrying the Result the tool prints instead of changing anything."""

    def __init__(self, result: Result):
        super().__init__(result.stdout or result.stderr)
        self.result = result


def guarded(tool):
    """Wrap a tool so that a ToolFault raised inside becomes the Result it carries."""
    def run(host, argv, stdin=""):
        try:
            return tool(host, argv, stdin)
        except ToolFault as fault:
            return fault.result
    run.__doc__ = tool.__doc__
    run.__name__ = tool.__name__
    return run
