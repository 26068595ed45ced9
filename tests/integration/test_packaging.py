"""Packaging: ansible-lint (production profile), the Galaxy tarball (what it holds, that it installs
and runs from the installed path), and the README's "Use it in your project" files and commands run
as written in a fresh directory against winsim hosts. (`make sanity` runs `ansible-test sanity` on the
installed tarball.)

The installed collection is used with PYTHONPATH cleared, so nothing can come from the checkout
(build/collections links it).
"""
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
# What the tarball leaves out (galaxy.yml says why): development-only trees and build leftovers.
NOT_SHIPPED = (".venv/", "build/", "tests/output/", "results/", ".hypothesis/", ".pytest_cache/",
               ".ansible/", "bench/", ".git/", ".ci/", "winsim/", "tools/", "extensions/molecule/",
               "tests/unit/", "tests/integration/", "tests/fixtures/", "tests/conftest.py",
               "tests/sanity/get_pip.py", "Makefile", "requirements/", "ansible.cfg", "ruff.toml")


def run(argv, env, cwd, timeout=300):
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return out.returncode, out.stdout + out.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(tarball, environment that sees only the installed collection, its install directory)."""
    root = tmp_path_factory.mktemp("galaxy")
    env = dict(os.environ, ANSIBLE_HOME=str(root / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(root / "tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    for name in ("PYTHONPATH", "ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH"):
        env.pop(name, None)
    rc, output = run(["ansible-galaxy", "collection", "build", "--output-path", str(root / "dist"), REPO],
                     env, root)
    assert rc == 0, output
    tarball = root / "dist" / "winsec-ipsec-0.1.0.tar.gz"
    collections = root / "collections"
    rc, output = run(["ansible-galaxy", "collection", "install", "--force", "-p", str(collections),
                      str(tarball)], env, root)
    assert "winsec.ipsec:0.1.0 was installed successfully" in output, output
    assert rc == 0, output
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    return tarball, env, collections / "ansible_collections" / "winsec" / "ipsec"


def test_ansible_lint_production_profile_passes(ansible_env):
    env = dict(ansible_env, NO_COLOR="1")
    rc, output = run(["ansible-lint"], env, REPO)
    assert rc == 0, output[-6000:]
    assert "Profile 'production' was required, and it passed" in output


def test_ansible_lint_catches_a_violation(ansible_env, tmp_path):
    """The same configuration fails a playbook with a short module name and an unnamed task."""
    playbook = tmp_path / "bad.yml"
    playbook.write_text("---\n- name: Bad\n  hosts: all\n  tasks:\n    - debug:\n        msg: hi\n")
    rc, output = run(["ansible-lint", "--nocolor", str(playbook)], dict(ansible_env, NO_COLOR="1"), REPO)
    assert rc != 0
    assert "fqcn[action-core]" in output and "name[missing]" in output


def test_tarball_holds_the_collection_and_no_build_leftovers(installed):
    tarball, _env, _path = installed
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    for needed in ("MANIFEST.json", "FILES.json", "meta/runtime.yml", "plugins/modules/ipsec_policy.py",
                   "plugins/action/ipsec_policy.py", "roles/worm_block/tasks/main.yml",
                   "playbooks/emergency_block.yml", "tests/sanity/ignore-2.19.txt"):
        assert needed in names, needed
    leftovers = [n for n in names if n.startswith(NOT_SHIPPED) or "__pycache__" in n or n.endswith(".pyc")]
    # tests/sanity/ignore-*.txt is all of tests/ that ships: Galaxy's and Automation Hub's sanity runs read it.
    assert [n for n in names if n.startswith("tests/") and "." in n] == ["tests/sanity/ignore-2.19.txt"], \
        [n for n in names if n.startswith("tests/")]
    assert not leftovers, leftovers[:20]
    assert os.path.getsize(tarball) < 1024 * 1024, os.path.getsize(tarball)


def test_installed_collection_documents_its_modules(installed):
    _tarball, env, path = installed
    rc, output = run(["ansible-doc", "winsec.ipsec.ipsec_rule"], env, str(path.parent))
    assert rc == 0, output
    assert "(%s)" % (path / "plugins" / "modules" / "ipsec_rule.py") in output
    assert "OPTIONS" in output and "EXAMPLES" in output


def test_installed_collection_renders_a_policy_without_a_host(installed, tmp_path):
    _tarball, env, _path = installed
    playbook = tmp_path / "render.yml"
    playbook.write_text("""---
- name: Render KB 813878's Slammer block for netsh
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Render
      winsec.ipsec.ipsec_policy:
        name: Block UDP 1434 Filter
        rules:
          - name: Block Inbound UDP 1434 Rule
            filters: ['*=0:1434:UDP']
            action: block
        state: rendered
        dialect: netsh
      register: slammer
    - name: Show
      ansible.builtin.debug:
        msg: "{{ slammer.rendered | to_json }}"
""")
    rc, output = run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)], env, str(tmp_path))
    assert rc == 0, output
    assert re.search(r'netsh ipsec static add policy name=\\+"Block UDP 1434 Filter\\+"', output), output
    assert "dstport=1434" in output and "action=block" in output


def readme_project_section():
    """[(kind, file name or None, text)] of the fenced blocks of README's "Use it in your project"."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    section = readme.split("\n## Use it in your project\n", 1)[1].split("\n## ", 1)[0]
    blocks, before = [], ""
    for index, part in enumerate(re.split(r"^```", section, flags=re.M)):
        if index % 2 == 0:
            before = part
            continue
        kind, _newline, text = part.partition("\n")
        names = re.findall(r"`([\w.-]+\.(?:yml|cfg))`", before)
        blocks.append((kind, names[-1] if names and kind != "sh" else None, text))
    return blocks


def test_readme_project_setup_works_from_a_fresh_directory(estate_factory, tmp_path):
    """The README's files and commands, as written, in a new directory; nothing from the checkout."""
    blocks = readme_project_section()
    commands = [text.strip().splitlines() for kind, _name, text in blocks if kind == "sh"]
    files = {name: text for kind, name, text in blocks if name}
    assert commands[0] == ["python3 -m pip install -r requirements/runtime.txt"]  # this venv has them
    assert sorted(files) == ["ansible.cfg", "requirements-git.yml", "requirements.yml", "site.yml"], sorted(files)
    estate = estate_factory(2, personalities=("modern", "2003"))
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="default",
               PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    for name in ("PYTHONPATH", "ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_INVENTORY"):
        env.pop(name, None)
    project = tmp_path / "my-project"
    for line in commands[1]:  # the build, run from the directory that holds my-project
        rc, output = run(["bash", "-c", line.replace("/path/to/ipsec-checkout", REPO)], env, str(tmp_path))
        assert rc == 0, (line, output)
    for name, text in files.items():
        (project / name).write_text(text)
    shutil.copy(estate.inventory_path, project / "inventory.yml")
    outputs = []
    for line in commands[2]:
        rc, output = run(["bash", "-c", line], env, str(project))
        assert rc == 0, (line, output[-4000:])
        outputs.append(output)
    installed = project / "collections" / "ansible_collections" / "winsec" / "ipsec"
    assert "winsec.ipsec:0.1.0 was installed successfully" in outputs[0], outputs[0]
    assert "(%s)" % (installed / "plugins" / "modules" / "ipsec_policy.py") in outputs[1], outputs[1][:500]
    for host in ("win001", "win002"):
        assert re.search(r'"msg": "%s: no policy assigned"' % host, outputs[2]), outputs[2][-3000:]
    assert re.search(r"win002\s+: ok=2\s+changed=0\s+unreachable=0\s+failed=0", outputs[2]), outputs[2][-2000:]
    # The shipped drift check, by name: a report of both hosts (the baseline's default policy is on neither).
    assert re.search(r'"msg": "2 hosts: 0 in sync, 2 drifting, 0 errors', outputs[3]), outputs[3][-3000:]
    assert (project / "drift-report" / "drift.html").is_file()

    # The git variant: the same requirements file, with this checkout's committed HEAD as the repository.
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    git_requirements = files["requirements-git.yml"].replace("https://github.com/winsec/ipsec.git", "file://" + REPO)
    (project / "requirements-git.yml").write_text(git_requirements.replace("version: main", "version: " + head))
    rc, output = run(["ansible-galaxy", "collection", "install", "-r", "requirements-git.yml", "-p", "from-git"],
                     env, str(project))
    assert rc == 0 and "winsec.ipsec:0.1.0 was installed successfully" in output, output
    shipped = project / "from-git" / "ansible_collections" / "winsec" / "ipsec"
    assert (shipped / "plugins" / "modules" / "ipsec_info.py").is_file()
    assert not (shipped / "winsim").exists()  # built through galaxy.yml's build_ignore, as the tarball is
