"""Each module's documentation renders, declares check/diff support, and is the argument spec."""
import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import option_paths, spec_from_doc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
# The modules that manage a Windows host over WinRM; drift_report runs on the controller only.
HOST_MODULES = ("ipsec_policy", "ipsec_rule", "ipsec_dynamic_block", "ipsec_info", "ipsec_exemptions")
MODULES = HOST_MODULES + ("drift_report",)
# Every module the collection ships (the behaviour test below covers them all).
ALL_MODULES = tuple(sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "plugins", "modules"))
                           if name.endswith(".py") and not name.startswith("_")))


@pytest.fixture(scope="module")
def rendered():
    """What `ansible-doc` makes of each module (fragments merged), as JSON."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"))
    doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    out = subprocess.run([doc, "--json"] + ["winsec.ipsec." + m for m in ALL_MODULES], env=env,
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
def test_every_option_has_a_type_and_a_description(rendered, module):
    for path, entry in option_paths(rendered[module]["doc"]["options"]).items():
        assert entry.get("description") and entry.get("type"), path


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


# A Windows host whose WinRM port is closed: a task that tried to connect would come back UNREACHABLE.
CLOSED_HOST = ("w1 ansible_connection=winrm ansible_host=127.0.0.1 ansible_port=1 ansible_user=u "
               "ansible_password=p ansible_winrm_transport=ntlm ansible_winrm_scheme=http\n")


def test_each_module_refuses_what_its_docs_do_not_allow_before_any_connection(rendered, tmp_path):
    """The documentation is the contract: for every module, a value outside an option's documented
    choices and an option the docs do not name are refused, naming the option and the choices, and
    no connection is attempted. Run through ansible-playbook, as users run the modules."""
    tasks, expected = [], {}
    for module in ALL_MODULES:
        options = rendered[module]["doc"]["options"]
        spec = spec_from_doc(options)
        examples = [t["winsec.ipsec." + module] for t in yaml.safe_load(rendered[module]["examples"])
                    if "winsec.ipsec." + module in t]
        valid = {name: TEMPLATED.get(spec[name]["type"], "templated") if "{{" in json.dumps(value) else value
                 for name, value in (examples[0] or {}).items()}
        name = "%s unknown option" % module
        tasks.append({"name": name, "winsec.ipsec." + module: dict(valid, no_such_option=1), "ignore_errors": True})
        expected[name] = ["no_such_option"]
        for option in sorted(o for o in options if options[o].get("choices")):
            bad = ["bogus"] if options[option]["type"] == "list" else "bogus"
            name = "%s %s" % (module, option)
            tasks.append({"name": name, "winsec.ipsec." + module: dict(valid, **{option: bad}), "ignore_errors": True})
            expected[name] = [option, "bogus"] + [str(c) for c in options[option]["choices"]]
    (tmp_path / "inventory.ini").write_text("[windows]\n" + CLOSED_HOST)
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{"hosts": "windows", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    play = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    out = subprocess.run([play, "-i", str(tmp_path / "inventory.ini"), str(tmp_path / "play.yml")], env=env,
                         capture_output=True, text=True, timeout=300)
    results = {}
    for section in out.stdout.split("\nTASK [")[1:]:
        title, _, body = section.partition("]")
        failed = [line for line in body.splitlines() if line.startswith("fatal: [w1]")]
        results[title] = failed[0] if failed else body
    assert set(results) == set(expected), out.stdout[-2000:]
    for name, words in expected.items():
        assert results[name].startswith("fatal: [w1]: FAILED!"), (name, results[name])
        message = json.loads(results[name].split("=> ", 1)[1])["msg"]
        assert all(word in message for word in words), (name, words, message)
