"""Inputs for the engine's readers made by winsim's own code (winsim shares no code with the
engine), so that a test decodes what another writer wrote instead of round-tripping one codec."""
import dataclasses

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.registry import RegTree, RegValue
from winsim.shell.powershell.parser import ArgValue, Command, Lit, ParseError, Parser, Pipeline
from winsim.state import blobs as sim_blobs
from winsim.state import model as sim_model
from winsim.state import registry as sim_registry
from winsim.state import store as sim_store
from winsim.tools import reg as sim_reg


def powershell_argument_values(text: str) -> list:
    """The values winsim's PowerShell parser finds in `text`, a run of arguments given to a native
    command (`netsh <text>`); a ValueError for anything but plain literals."""
    try:
        statements = Parser("netsh " + text).parse_script()
    except ParseError as err:           # PowerShell's own message, e.g. a missing terminator
        raise ValueError("%s: %r" % (err.message, text)) from None
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


# -- the registry store, as winsim's writer leaves it on a host ------------------------------------

def as_winsim(value):
    """An engine model object (HostState, Policy, Filter, ...) as winsim's object of the same class
    name and fields; tuples element by element. The two models are written independently and agree
    on names and fields (winsim/state/model.py says so), so this copies, it does not translate. A
    field winsim does not have is left out only when it takes no part in equality (bookkeeping such
    as a reason list); any other is an error."""
    if isinstance(value, tuple):
        return tuple(as_winsim(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = getattr(sim_model, type(value).__name__)
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(value) if f.name not in known and f.compare]
        if missing:
            raise TypeError("winsim's %s has no %s" % (cls.__name__, ", ".join(missing)))
        return cls(**{f.name: as_winsim(getattr(value, f.name)) for f in dataclasses.fields(value)
                      if f.name in known})
    return value


def winsim_tree(state, root: str = sim_registry.LOCAL_ROOT, flavor: str = "modern", now: int = 0,
                tree=None):
    """winsim's registry tree after its writer (winsim.state.store.write_store, what netsh leaves
    on a host) put `state` (an engine HostState) under `root`. Objects keep the GUIDs they carry;
    winsim derives the others."""
    tree = sim_registry.RegTree() if tree is None else tree
    sim_store.write_store(as_winsim(state), root, flavor, now, tree)
    return tree


def engine_tree(tree) -> RegTree:
    """A copy of winsim's registry tree as the engine's RegTree (key by key, value by value)."""
    copy = RegTree()
    for key in tree.keys():
        copy.add_key(key)
        for name, value in tree.values(key).items():
            copy.set(key, name, RegValue(value.type, value.data))
    return copy


def store_tree(state, root: str = sim_registry.LOCAL_ROOT, flavor: str = "modern", now: int = 0) -> RegTree:
    """`state` written by winsim's writer, as the engine's RegTree."""
    return engine_tree(winsim_tree(state, root, flavor, now))


def reg_query(tree, key: str = sim_registry.IPSEC_ROOT, recursive: bool = True, style: str = "modern") -> str:
    """What winsim's `reg query key [/s]` prints for winsim's `tree`."""
    return sim_reg.render_query(tree, key, recursive=recursive, style=style)


def winsim_copy(tree: RegTree):
    """The engine's RegTree as winsim's (key by key, value by value)."""
    copy = sim_registry.RegTree()
    for key in tree.keys():
        copy.add_key(key)
        for name, value in tree.values(key).items():
            copy.set(key, name, sim_registry.RegValue(value.type, value.data))
    return copy


# -- single ipsecData blobs, as winsim's writer makes them ----------------------------------------

def filter_blob(filters, flavor: str = "modern") -> bytes:
    """The ipsecData of a filter list holding `filters` (engine Filters), by winsim's writer: the
    legacy records, and the v2 section after them when a range or IPv6 address needs it (modern only)."""
    return sim_store.filter_blob(sim_model.FilterList("L", as_winsim(tuple(filters))), flavor)


def negpol_blob(action, flavor: str = "modern") -> bytes:
    """The ipsecData of an engine FilterAction, by winsim's writer."""
    return sim_blobs.write_negpol(sim_store.negpol_blob(as_winsim(action), flavor), flavor)


def nfa_blob(rule, flavor: str = "modern") -> bytes:
    """The ipsecData of an engine Rule (its auth, conntype, tunnel, active), by winsim's writer."""
    return sim_store.nfa_blob(as_winsim(rule), flavor)


def policy_blob(polling_seconds: int, flavor: str = "modern") -> bytes:
    """The ipsecData of a policy whose blob says `polling_seconds`, by winsim's writer."""
    return sim_blobs.write_policy(sim_blobs.PolicyBlob(polling_seconds), flavor)
