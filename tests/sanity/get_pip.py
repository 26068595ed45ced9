"""Stand-in for the get-pip script ansible-test downloads from its own CI file host.

ansible-test bootstraps pip into each empty virtual environment it makes by running
~/.ansible/test/cache/get_pip_<version>.py with pip's install arguments, and takes a copy found there
before downloading one. `make sanity` puts this file there (``get_pip.py --cache-name`` prints the name
this ansible-test looks for), so the bootstrap needs only the package index pip is configured for:
Python's ensurepip installs the pip wheel bundled with the interpreter, which then installs the pip
version ansible-test asked for (``pip==24.2``) from the index.
"""
from __future__ import annotations

import subprocess
import sys

# Options of the real get-pip script that `pip install` does not know.
GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")


def cache_name():
    """get_pip_<version>.py for the pip version this ansible-test pins for its virtual environments."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_test._internal.python_requirements import get_venv_packages

    class Python:  # get_venv_packages reads only the version
        version = "%d.%d" % sys.version_info[:2]

    return "get_pip_%s.py" % get_venv_packages(Python())["pip"].replace(".", "_")


def bootstrap(argv):
    pip_args = [arg for arg in argv if arg not in GET_PIP_ONLY]
    # In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in the process that runs it,
    # and the install below needs the machine's pip configuration (index, certificates).
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--upgrade"] + pip_args, check=True)
    if "--no-setuptools" in argv:
        # ensurepip of Python < 3.12 installs setuptools too; ansible-test asked for a venv without it.
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"], check=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--cache-name"]:
        print(cache_name())
    else:
        bootstrap(sys.argv[1:])
