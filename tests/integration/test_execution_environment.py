"""The execution environment (execution-environment.yml): the build context `ansible-builder create`
writes, and that what this context installs runs the collection against a winsim host.

No container runtime runs here, so the image is not built. The test does what its build stages do,
with the context's own files: ansible-galaxy installs the collections of _build/requirements.yml
from _build/ (the galaxy stage, WORKDIR /build); the context's introspect.py combines their Python
requirements with _build/requirements.txt (the builder stage); a fresh virtual environment gets
those and the Containerfile's ANSIBLE_INSTALL_REFS (ansible-core, ansible-runner: the base stage).
Then ansible-runner from that environment, the engine AWX starts in the image, runs
winsec.ipsec.ipsec_info against a winsim host, with nothing from this checkout importable.
"""
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
VERSION = yaml.safe_load(open(os.path.join(REPO, "galaxy.yml")))["version"]
TARBALL = "winsec-ipsec-%s.tar.gz" % VERSION


def clean_env(tmp):
    """An environment with the repo's .venv tools but nothing of this checkout on any search path."""
    env = dict(os.environ, ANSIBLE_HOME=str(tmp / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    for name in ("PYTHONPATH", "ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def run(argv, env, cwd, timeout=600):
    out = subprocess.run(argv, env=env, cwd=str(cwd), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (argv, (out.stdout + out.stderr)[-4000:])
    return out.stdout + out.stderr


def pins(path):
    """{name: 'name==version'} of a pip requirements file (comments and blank lines left out)."""
    found = {}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            found[re.split(r"[=<>!~ ;\[]", line, maxsplit=1)[0].lower()] = line.replace(" ", "")
    return found


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """(the build context ansible-builder wrote, the tarball it was given, a clean environment)."""
    tmp = tmp_path_factory.mktemp("ee")
    env = clean_env(tmp)
    # Where execution-environment.yml expects the tarball (make ee builds it there too). The lock keeps
    # pytest-xdist workers that each run this fixture from building it under each other's feet.
    os.makedirs(os.path.join(REPO, "build", "ee"), exist_ok=True)
    with open(os.path.join(REPO, "build", "ee.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run(["ansible-galaxy", "collection", "build", "--force", "--output-path", os.path.join(REPO, "build", "ee"),
             REPO], env, tmp)
        shutil.copy(os.path.join(REPO, "build", "ee", TARBALL), tmp / TARBALL)  # what was built now
        output = run(["ansible-builder", "create", "-f", os.path.join(REPO, "execution-environment.yml"),
                      "-c", str(tmp / "context"), "--output-filename", "Containerfile"], env, tmp)
    assert "Complete!" in output, output
    return tmp / "context", tmp / TARBALL, env


def containerfile_arg(context, name):
    match = re.search(r'^ARG %s="([^"]*)"$' % name, (context / "Containerfile").read_text(), re.M)
    assert match, name
    return match.group(1)


def test_context_holds_the_tarball_and_names_it_for_the_galaxy_stage(context):
    ctx, tarball, _env = context
    galaxy = yaml.safe_load((ctx / "_build" / "requirements.yml").read_text())
    files = [entry["name"] for entry in galaxy["collections"] if entry.get("type") == "file"]
    assert len(files) == 1, galaxy
    # The galaxy stage runs ansible-galaxy in /build, the copy of _build/: the name resolves there to
    # the very tarball built from this checkout.
    shipped = ctx / "_build" / files[0]
    assert shipped.read_bytes() == tarball.read_bytes(), files[0]
    with tarfile.open(shipped) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))
        names = archive.getnames()
    assert (manifest["collection_info"]["namespace"], manifest["collection_info"]["name"],
            manifest["collection_info"]["version"]) == ("winsec", "ipsec", VERSION)
    assert "plugins/modules/ipsec_info.py" in names and "roles/worm_block/tasks/main.yml" in names
    # The image is a deployment artifact: nothing of the test estate goes into it.
    assert not [n for n in names if n.startswith(("winsim/", "tests/integration/", "awx/"))]


def test_context_pins_the_python_packages_the_tests_run_with(context):
    ctx, _tarball, _env = context
    runtime = pins(os.path.join(REPO, "requirements", "runtime.txt"))
    test = pins(os.path.join(REPO, "requirements", "test.txt"))
    assert {"ansible-core", "pywinrm"} <= set(runtime)
    # The builder stage's user requirements: exactly the controller's runtime pins.
    assert pins(ctx / "_build" / "requirements.txt") == runtime
    # The base stage installs ansible-core and ansible-runner first: the same versions.
    refs = containerfile_arg(ctx, "ANSIBLE_INSTALL_REFS").split()
    assert sorted(refs) == sorted([runtime["ansible-core"], test["ansible-runner"]]), refs
    # ansible-core 2.19 runs on Python 3.11 or later: the interpreter the image installs.
    assert re.search(r"python3\.(1[1-9])$", containerfile_arg(ctx, "PYCMD")), containerfile_arg(ctx, "PYCMD")


def test_what_the_context_installs_runs_the_collection_against_winsim(context, estate_factory, tmp_path):
    ctx, _tarball, env = context
    build = ctx / "_build"
    # Galaxy stage: the context's requirements.yml from its _build/ (the image's /build).
    collections = tmp_path / "usr-share-ansible" / "collections"
    output = run(["ansible-galaxy", "collection", "install", "-r", "requirements.yml", "--collections-path",
                  str(collections)], env, build)
    assert "winsec.ipsec:%s was installed successfully" % VERSION in output, output
    # Builder stage: the context's own introspect.py merges the collections' and the user's requirements.
    combined = tmp_path / "requirements.txt"
    output = run([sys.executable, str(build / "scripts" / "introspect.py"), "introspect", "--user-pip",
                  str(build / "requirements.txt"), "--write-pip", str(combined), str(collections)], env, tmp_path)
    # The installed collection declares its own Python packages (meta/execution-environment.yml), so an
    # image that installs it from Galaxy, without this definition's list, gets them too.
    declared = yaml.safe_load(output.split("\n\n", 1)[0])["python"]
    runtime = pins(os.path.join(REPO, "requirements", "runtime.txt"))
    from_collection = sorted(line.split("#")[0].strip() for line in declared if "from collection winsec.ipsec" in line)
    assert from_collection == sorted(v for k, v in runtime.items() if k != "ansible-core"), declared
    # Base and final stages: a fresh Python with ANSIBLE_INSTALL_REFS and the combined requirements
    # (pip's cache makes this fast after the first run).
    venv = tmp_path / "ee-python"
    run([sys.executable, "-m", "venv", str(venv)], env, tmp_path)
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *containerfile_arg(ctx, "ANSIBLE_INSTALL_REFS").split(), "-r", str(combined)], env, tmp_path)
    installed = run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "freeze"], env, tmp_path)
    assert "pywinrm==" in installed and "ansible-runner==" in installed, installed
    assert "winsim" not in installed and "pytest" not in installed  # only what the image holds

    # A job as AWX starts it in the image: ansible-runner with a private data directory.
    estate = estate_factory(count=1)
    private = tmp_path / "job"
    (private / "project").mkdir(parents=True)
    (private / "inventory").mkdir()
    shutil.copy(estate.inventory_path, private / "inventory" / "hosts.yml")
    (private / "project" / "info.yml").write_text(yaml.safe_dump([{
        "name": "Read the IPsec policy store", "hosts": "all", "gather_facts": False,
        "tasks": [{"name": "Read", "winsec.ipsec.ipsec_info": {}}]}]))
    job_env = dict(env, PATH=str(venv / "bin") + os.pathsep + "/usr/bin:/bin",
                   ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                   ANSIBLE_PYTHON_INTERPRETER=str(venv / "bin" / "python"))
    run([str(venv / "bin" / "ansible-runner"), "run", str(private), "-p", "info.yml", "--ident", "job"],
        job_env, tmp_path)
    events = [json.loads(path.read_text()) for path in (private / "artifacts" / "job" / "job_events").iterdir()]
    ok = [e["event_data"] for e in events if e["event"] == "runner_on_ok"]
    host = estate.hosts[0].name
    assert [(e["host"], e["resolved_action"]) for e in ok] == [(host, "winsec.ipsec.ipsec_info")], events
    fact = ok[0]["res"]["ansible_facts"]["winsec_ipsec_state"]
    # Read from the host over WinRM (pywinrm and its NTLM packages from the fresh environment).
    assert (fact["host"], fact["dialect"], fact["os"]["caption"]) == (host, "netsh", "Windows Server 2022 Standard")
    assert "policies" in ok[0]["res"]["state"]
    assert (private / "artifacts" / "job" / "rc").read_text().strip() == "0"
