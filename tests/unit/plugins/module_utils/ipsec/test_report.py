"""report.plain: what Ansible hands a filter plugin, as plain data (the drift and slice-artifact filters)."""
import json

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, DomainAssignment, DynamicRule, Filter, FilterAction, FilterList, HostState, Policy, Rule,
)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.report import (
    message_text, plain, state_from_dict, state_to_dict)


def types(value):
    """The exact type of every container in `value`, in order."""
    if isinstance(value, dict):
        return [type(value)] + [t for v in value.values() for t in types(v)]
    if isinstance(value, list):
        return [type(value)] + [t for v in value for t in types(v)]
    return []


def test_ansible_lazy_containers_become_plain_with_their_templates_rendered():
    """ansible-core 2.19 passes a filter lazy containers (dict and list subclasses) whose items are
    rendered only when read; plain() reads them all, inside the call, as a filter does."""
    seen = {}

    def a_filter(value):
        seen["given"] = [type(value).__name__, type(value["rules"]).__name__]
        seen["plain"] = plain(value)
        return ""

    variables = {"port": 1434, "name": "Slammer",
                 "block": {"rules": [{"name": trust_as_template("{{ name }}"), "port": trust_as_template("{{ port }}")}],
                           "ports": (1434, 445), "dialect": None}}
    templar = Templar(loader=DataLoader(), variables=variables)
    templar.evaluate_expression(trust_as_template("f(block)"), local_variables={"f": a_filter})
    assert seen["given"] == ["_AnsibleLazyTemplateDict", "_AnsibleLazyTemplateList"]
    out = seen["plain"]
    assert out == {"rules": [{"name": "Slammer", "port": 1434}], "ports": [1434, 445], "dialect": None}
    assert set(types(out)) == {dict, list}
    assert json.loads(json.dumps(out)) == out


def test_anything_with_items_is_a_mapping_and_keys_become_text():
    class Mapped:
        def items(self):
            return [(1, ("a", {"b": 2})), ("c", "text")]

    assert plain(Mapped()) == {"1": ["a", {"b": 2}], "c": "text"}
    assert plain("items") == "items" and plain(None) is None


def test_a_reported_state_converts_back_and_unknown_keys_are_refused():
    """What the rollout record and the drift report do with each host's reported state."""
    slammer = Filter(ANY, ME, 17, 0, 1434, mirrored=False)
    state = HostState(policies=(Policy("P", rules=(Rule("R", "L", "A"),)),), filterlists=(FilterList("L", (slammer,)),),
                      filteractions=(FilterAction("A", "block"),), assigned="P", dynamic=(DynamicRule(slammer),),
                      domain=DomainAssignment("GPO", "LDAP://CN=x"), policyagent="running")
    reported = json.loads(json.dumps(state_to_dict(state)))
    assert reported["policies"][0]["assigned"] is True           # derived, and dropped on the way back
    assert state_from_dict(reported) == state
    assert state_from_dict(dict(reported, dynamic=None)).dynamic is None     # unknown stays unknown
    with pytest.raises(ValueError, match="HostState: unknown keys colour"):
        state_from_dict(dict(reported, colour="red"))
    with pytest.raises(ValueError, match="Policy: unknown keys x"):
        state_from_dict(dict(reported, policies=[dict(reported["policies"][0], x=1)]))


def test_a_warning_is_its_text_as_an_object_after_json_or_as_a_plain_string():
    from ansible.module_utils._internal._messages import Event, WarningSummary
    summary = WarningSummary(event=Event(msg="listing line 1 is not in the layout"))
    through_json = {"event": {"msg": "listing line 1 is not in the layout", "help_text": None}}
    assert [message_text(m) for m in (summary, through_json, "a module's own string")] == [
        "listing line 1 is not in the layout", "listing line 1 is not in the layout", "a module's own string"]
