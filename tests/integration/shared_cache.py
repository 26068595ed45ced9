"""What the shared fact cache tests need besides winsim: a redis server of their own, the real
community.general redis cache plugin, ansible-runner jobs, and AWX's fact storage.

- `RedisServer`: Debian's redis-server (`make services` installs it) on a free loopback port, in a
  temporary directory, with no persistence (no RDB snapshot, no append-only file).
- `community_general()`: the collections path holding community.general, unmodified, as PyPI's
  `ansible` package ships it. Galaxy may be out of reach where the tests run, PyPI is not: the pinned
  wheel (version and SHA-256 below) is downloaded once into build/wheels/ and only
  ansible_collections/community/general is extracted, into build/test-collections/. Installing the
  `ansible` package into .venv instead would put about a hundred other collections on every run's
  collection path, the sanity and lint runs' included.
- `Job`: one ansible-runner run (the engine AWX runs jobs with), with its own private data dir, so
  each job is a controller of its own; `Job.tasks()` gives {task: {host: result}} as
  test_modules_kb.run_playbook does, so task_trips can split the WinRM commands per task.
- `awx_job`: one AWX job; `AwxFactStorage`: what AWX does for a job template with use_fact_cache
  (awx/main/tasks/facts.py, github.com/ansible/awx): before the job, start_fact_cache writes each host's stored facts, as
  JSON, to <private data dir>/artifacts/<job id>/fact_cache/<host>, the directory ansible-runner's
  jsonfile fact cache points Ansible at (ANSIBLE_CACHE_PLUGIN_CONNECTION); after it,
  finish_fact_cache stores the files written since then, and clears the facts of a host whose file
  it wrote is gone. Every job gets a new private data dir (jobs.py build_private_data_dir).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile

import ansible_runner
import redis

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# ansible 12.3.0 requires ansible-core ~=2.19.5 and ships community.general 11.4.2
ANSIBLE_WHEEL = "ansible-12.3.0-py3-none-any.whl"
ANSIBLE_WHEEL_SHA256 = "cd156f82fa87f7a899212b0efa9f7ca3a24d609212de9f78428a572eb01e5414"
GENERAL = "ansible_collections/community/general/"
# What the runs get from conftest's ansible_env (ansible-runner sets the stdout callback itself)
RUNNER_ENV = ("ANSIBLE_LOCAL_TEMP", "ANSIBLE_HOME", "ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_PYTHON_INTERPRETER",
              "ANSIBLE_NOCOLOR", "PATH")


class RedisServer:
    """redis-server on 127.0.0.1, a free port, `directory` its working directory; stop() ends it."""

    def __init__(self, directory):
        binary = shutil.which("redis-server")
        if not binary:
            raise AssertionError("redis-server is not installed: `make services` installs Debian's redis-server")
        os.makedirs(directory, exist_ok=True)
        self.log = os.path.join(directory, "redis.log")
        for _attempt in range(5):          # a port found free can be taken before redis binds it
            self.port = free_port()
            self.process = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(directory),
                 "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", self.log],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
            if self._ready():
                return
            self.stop()
        raise AssertionError("redis-server did not start; its log: %s" % self.log)

    def _ready(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                return self.client.ping()
            except redis.ConnectionError:
                time.sleep(0.05)
        return False

    @property
    def uri(self):
        """The connection string of community.general.redis: host:port:db."""
        return "127.0.0.1:%d:0" % self.port

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def community_general():
    """The collections path (a directory holding ansible_collections/) with community.general in it."""
    root = os.path.join(REPO, "build", "test-collections", ANSIBLE_WHEEL[:-len(".whl")])
    if os.path.isdir(os.path.join(root, GENERAL)):
        return root
    wheels = os.path.join(REPO, "build", "wheels")
    os.makedirs(wheels, exist_ok=True)
    with open(os.path.join(wheels, ".lock"), "w") as lock:     # pytest-xdist workers take turns
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(os.path.join(root, GENERAL)):
            return root
        wheel = os.path.join(wheels, ANSIBLE_WHEEL)
        if not os.path.exists(wheel):
            version = ANSIBLE_WHEEL.split("-")[1]
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "ansible==%s" % version, "-d", wheels], check=True, capture_output=True)
        with open(wheel, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        if digest != ANSIBLE_WHEEL_SHA256:
            raise AssertionError("%s has SHA-256 %s, not the pinned %s" % (wheel, digest, ANSIBLE_WHEEL_SHA256))
        staging = tempfile.mkdtemp(dir=os.path.dirname(wheels))
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging, [n for n in archive.namelist() if n.startswith(GENERAL)])
        os.makedirs(os.path.dirname(root), exist_ok=True)
        os.rename(staging, root)
    return root


def runner_env(ansible_env, **settings):
    """ansible-runner envvars: conftest's environment, the collection paths, and `settings`."""
    env = {k: ansible_env[k] for k in RUNNER_ENV if k in ansible_env}
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([ansible_env["ANSIBLE_COLLECTIONS_PATH"], community_general()])
    env.update(settings)
    return env


def redis_settings(server, prefix, keyset):
    """The fact cache settings of a controller that shares `server` (ansible.cfg's fact_caching*)."""
    return {"ANSIBLE_CACHE_PLUGIN": "community.general.redis", "ANSIBLE_CACHE_PLUGIN_CONNECTION": server.uri,
            "ANSIBLE_CACHE_PLUGIN_PREFIX": prefix, "ANSIBLE_CACHE_REDIS_KEYSET_NAME": keyset,
            "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "3600"}


class Job:
    """One ansible-runner run of `playbook` in the private data dir `data`; start it, then .join()."""

    def __init__(self, data, playbook, inventory, envvars, limit=None, ident=None, fact_cache_type="jsonfile"):
        self.data = str(data)
        os.makedirs(self.data, exist_ok=True)
        kwargs = {"private_data_dir": self.data, "playbook": playbook, "inventory": inventory, "envvars": envvars,
                  "quiet": True, "fact_cache_type": fact_cache_type}
        if limit:
            kwargs["limit"] = limit
        if ident:
            kwargs["ident"] = ident
        self.started = time.monotonic()
        self.thread, self.runner = ansible_runner.run_async(**kwargs)

    def join(self, timeout=600):
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), "%s did not finish" % self.data
        self.seconds = time.monotonic() - self.started
        return self

    def tasks(self):
        """{task name: {host: result}} of the run's per-host results, with failed and skipped set."""
        status = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_skipped": "skipped",
                  "runner_on_unreachable": "failed"}
        tasks = {}
        for event in self.runner.events:
            kind = status.get(event.get("event"))
            if kind is None:
                continue
            data = event["event_data"]
            result = dict(data.get("res") or {})
            result["failed"] = kind == "failed"
            result["skipped"] = kind == "skipped"
            tasks.setdefault(data["task"], {})[data["host"]] = result
        if not tasks:
            raise AssertionError("ansible-runner recorded no result (status %s, rc %s):\n%s"
                                 % (self.runner.status, self.runner.rc, self.runner.stdout.read()[-3000:]))
        return tasks


class AwxFactStorage:
    """The facts AWX keeps per inventory host (Host.ansible_facts), handed to jobs as AWX does."""

    def __init__(self):
        self.facts = {}

    def start(self, artifacts_dir, hosts):
        """start_fact_cache: the stored facts of the job's hosts as files, then a summary file whose
        modification time tells which files the job wrote."""
        cache = os.path.join(artifacts_dir, "fact_cache")
        os.makedirs(cache, mode=0o700, exist_ok=True)
        self.written = {}
        for host in hosts:
            self.written[host] = host in self.facts
            if self.written[host]:
                with open(os.path.join(cache, host), "w", encoding="utf-8") as handle:
                    json.dump(self.facts[host], handle)
                stamp = os.path.getmtime(handle.name) - 2      # AWX backdates them, as finish compares times
                os.utime(handle.name, (stamp, stamp))
        self.summary = os.path.join(artifacts_dir, "host_cache_summary.json")
        with open(self.summary, "w", encoding="utf-8") as handle:
            json.dump({"hosts_cached": self.written}, handle)

    def finish(self, artifacts_dir):
        """finish_fact_cache: a file written at or after the summary replaces the host's facts; a
        file it had written and is now gone clears them (Ansible removed it); returns the hosts
        whose facts changed."""
        since = os.path.getmtime(self.summary)
        updated = []
        for host, written in self.written.items():
            path = os.path.join(artifacts_dir, "fact_cache", host)
            if not os.path.exists(path):
                if written:
                    self.facts[host] = {}
                    updated.append(host)
                continue
            if os.path.getmtime(path) >= since:
                with open(path, encoding="utf-8") as handle:
                    facts = json.load(handle)
                if facts != self.facts.get(host):
                    self.facts[host] = facts
                    updated.append(host)
        return updated


def awx_job(job_id, tmp_path, playbook, inventory, envvars, hosts, storage=None, ansible_cfg=None):
    """One AWX job (awx/main/tasks/jobs.py BaseTask.run): a new private data dir, the project (the
    playbook and its ansible.cfg) in its project/ dir, ident = the job id. With `storage` (the job
    template's use_fact_cache) fact_cache_type is jsonfile and AWX's fact storage runs around the
    job; without, fact_cache_type is '' and the project's ansible.cfg and the job's environment say
    which cache Ansible uses."""
    data = tmp_path / ("awx-job-%d" % job_id)
    project = data / "project"
    project.mkdir(parents=True)
    shutil.copy(playbook, project / "playbook.yml")
    if ansible_cfg:
        (project / "ansible.cfg").write_text(ansible_cfg, encoding="utf-8")
    artifacts = os.path.join(str(data), "artifacts", str(job_id))
    if storage is not None:
        storage.start(artifacts, hosts)
    job = Job(data, "playbook.yml", inventory, envvars, ident=str(job_id),
              fact_cache_type="jsonfile" if storage is not None else "").join()
    job.artifacts = pathlib.Path(artifacts)
    job.updated = storage.finish(artifacts) if storage is not None else None
    return job
