"""Packaging: ansible-lint (production profile), the Galaxy tarball (what it holds, that it installs
and runs from the installed path) and the offline part of `ansible-test sanity` on that tree.

The installed collection is used with PYTHONPATH cleared and sys.path scanning off, so nothing can
come from the checkout (build/collections links it).
"""
import os
import re
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
# Sanity tests that ansible-test runs in a virtual environment it fills from PyPI after fetching a
# pip bootstrap script from a host outside the package registries (or needs pwsh / shellcheck).
NEEDS_NETWORK_OR_TOOLS = ("ansible-doc", "changelog", "import", "pep8", "pslint", "pylint",
                          "runtime-metadata", "shellcheck", "validate-modules", "yamllint")
OFFLINE_SANITY = ("action-plugin-docs", "compile", "empty-init", "ignores", "line-endings", "no-assert",
                  "no-get-exception", "no-illegal-filenames", "no-smart-quotes", "replace-urlopen",
                  "shebang", "symlinks", "use-argspec-type-path", "use-compat-six")
NOT_SHIPPED = (".venv/", "build/", "tests/output/", "results/", ".hypothesis/", ".pytest_cache/",
               ".ansible/", "bench/", ".git/", ".ci/")


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


def test_offline_sanity_passes_on_the_installed_tree(installed, tmp_path):
    _tarball, env, path = installed
    env = dict(env, HOME=str(tmp_path))  # ansible-test keeps its state in ~/.ansible/test
    argv = ["ansible-test", "sanity", "--python", "%d.%d" % sys.version_info[:2], "--color", "no"]
    for test in NEEDS_NETWORK_OR_TOOLS:
        argv += ["--skip-test", test]
    rc, output = run(argv, env, str(path), timeout=180)
    assert rc == 0, output[-6000:]
    ran = re.findall(r'Running sanity test "([\w-]+)"', output)
    assert sorted(ran) == sorted(OFFLINE_SANITY), ran
