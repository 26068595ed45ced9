"""Each module's documentation renders, declares check/diff support, and is the argument spec."""
import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import option_paths, spec_from_doc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".."))
# The modules that manage a Windows host over WinRM; drift_report runs on the controller only.
HOST_MODULES = ("ipsec_policy", "ipsec_rule", "ipsec_dynamic_block", "ipsec_info", "ipsec_exemptions")
MODULES = HOST_MODULES + ("drift_report",)


@pytest.fixture(scope="module")
def rendered():
    """What `ansible-doc` makes of each module (fragments merged), as JSON."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"))
    doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    out = subprocess.run([doc, "--json"] + ["winsec.ipsec." + m for m in MODULES], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    return {name.rsplit(".", 1)[1]: value for name, value in data.items()}


def test_ansible_doc_renders_each_module_as_text():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"))
    doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    out = subprocess.run([doc, "winsec.ipsec.ipsec_rule"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "[WARNING]" not in out.stderr, out.stderr
    assert "winsec.ipsec.ipsec_rule" in out.stdout and "filters" in out.stdout


@pytest.mark.parametrize("module", HOST_MODULES)
def test_check_and_diff_mode_declared_full_on_windows(rendered, module):
    attributes = rendered[module]["doc"]["attributes"]
    assert attributes["check_mode"]["support"] == "full"
    assert attributes["diff_mode"]["support"] == "full"
    assert attributes["platform"]["platforms"] == "windows"


@pytest.mark.parametrize("module", MODULES)
def test_every_option_has_type_and_description_and_becomes_the_spec(rendered, module):
    options = rendered[module]["doc"]["options"]
    spec = spec_from_doc(options)
    docs, specs = option_paths(options), option_paths(spec)
    assert set(docs) == set(specs)
    for path, entry in docs.items():
        assert entry.get("description") and entry.get("type"), path
        for key in ("type", "choices", "default", "elements", "required"):
            if key in entry and not (key == "default" and entry[key] is None):
                assert specs[path].get(key) == entry[key], (path, key)
    if module in HOST_MODULES:
        assert "dialect" in spec and spec["dialect"]["choices"] == ["netsh", "ipseccmd", "ipsecpol"]


# A templated option ("{{ groups['windows'] }}") is validated by Ansible once rendered; here it stands
# in as an empty value of its declared type, so only the literal values are checked.
TEMPLATED = {"list": [], "dict": {}, "int": 0, "bool": False}


def literal_args(args, spec):
    return {name: TEMPLATED.get(spec.get(name, {}).get("type"), "templated")
            if isinstance(value, str) and "{{" in value else value
            for name, value in (args or {}).items()}


@pytest.mark.parametrize("module", MODULES)
def test_examples_validate_against_the_spec(rendered, module):
    spec = spec_from_doc(rendered[module]["doc"]["options"])
    tasks = yaml.safe_load(rendered[module]["examples"])
    checked = 0
    for task in tasks:
        key = "winsec.ipsec." + module
        if key in task:
            result = ArgumentSpecValidator(spec).validate(literal_args(task[key], spec))
            assert not result.error_messages, task
            checked += 1
    assert checked


@pytest.mark.parametrize("module", HOST_MODULES)
def test_return_documents_the_shared_keys(rendered, module):
    returned = rendered[module]["return"]
    for key in ("changed",) if module == "ipsec_info" else ("changed", "commands", "before", "after",
                                                           "round_trips", "os", "dialect"):
        if module != "ipsec_info":
            assert returned[key]["description"], key
    if module == "ipsec_info":
        assert {"state", "netdiag", "exemptions", "round_trips"} <= set(returned)


def test_drift_report_declares_check_mode_on_the_controller(rendered):
    attributes = rendered["drift_report"]["doc"]["attributes"]
    assert attributes["check_mode"]["support"] == "full"
    assert attributes["diff_mode"]["support"] == "none"
    assert attributes["platform"]["platforms"] == "posix"
    assert {"changed", "files", "report"} <= set(rendered["drift_report"]["return"])


def test_spec_from_doc_rejects_undocumented_or_untyped_options():
    with pytest.raises(ValueError, match="'x' has no description"):
        spec_from_doc({"x": {"type": "str"}})
    with pytest.raises(ValueError, match="'y' has no type"):
        spec_from_doc({"y": {"description": "why"}})
    with pytest.raises(ValueError, match="'inner' has no type"):
        spec_from_doc({"outer": {"type": "list", "elements": "dict", "description": "d",
                                 "suboptions": {"inner": {"description": "d"}}}})


def test_spec_from_doc_keeps_what_validation_needs_and_drops_prose():
    spec = spec_from_doc({"rules": {"type": "list", "elements": "dict", "description": ["d"],
                                    "version_added": "0.1.0",
                                    "suboptions": {"name": {"type": "str", "required": True, "description": "n",
                                                            "aliases": ["rule"]},
                                                   "psk": {"type": "str", "no_log": True, "description": "k"}}}})
    assert spec == {"rules": {"type": "list", "elements": "dict", "options": {
        "name": {"type": "str", "required": True, "aliases": ["rule"]},
        "psk": {"type": "str", "no_log": True}}}}
