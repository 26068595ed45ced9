"""An estate: many winsim hosts served at once, each on its own loopback address, plus an inventory.

    with Estate("/tmp/state", count=3, personalities=["modern", "xp"]) as estate:
        estate.write_inventory("/tmp/hosts.yml")
        ...

Hosts get 127.0.0.2, .3, ... (all of 127/8 is loopback on Linux, no setup needed) on 5985 (HTTP)
and 5986 (HTTPS). Port 0 picks free ports, which is what tests use. The estate's description
(addresses, ports, user, password) is kept in STATE/estate.json (mode 0600) for `winsim ctl`.
"""
from __future__ import annotations

import ipaddress
import json
import os
import secrets

import yaml

from .transport import auth
from .transport.server import Listener, ServedHost, tls_context

DEFAULT_USER = "Administrator"
ESTATE_FILE = "estate.json"
CONTROL_PATH = "/winsim/control"
# Windows 2000 predates WinRM: it is served offline (rendered commands), never over the network.
NO_WINRM = {"2000"}


def default_host_factory(name, address, personality, state_dir, users, domain_store):
    from .host import SimHost  # the tools helper's host; imported late so the transport stands alone
    return SimHost(name, address, personality, state_dir, users=users, domain_store=domain_store)


def loopback_addresses(base: str, count: int) -> list[str]:
    first = ipaddress.IPv4Address(base)
    addresses = [str(first + i) for i in range(count)]
    if not all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("127.0.0.0/8") for a in addresses):
        raise ValueError("base address %s with %d hosts leaves 127.0.0.0/8; accepted: a 127.x.y.z "
                         "address with room for every host" % (base, count))
    return addresses


class Estate:
    def __init__(self, state_dir: str, count: int = 1, personalities=("modern",), *,
                 base_address: str = "127.0.0.2", http_port: int = 5985, https_port: int = 5986,
                 https_only: bool = False, user: str = DEFAULT_USER, password: str | None = None,
                 transport: str = "basic", latency_ms: int = 0, name_prefix: str = "win",
                 host_factory=default_host_factory):
        if count < 1:
            raise ValueError("count must be at least 1, got %r" % count)
        if transport not in ("basic", "ntlm"):
            raise ValueError("transport must be 'basic' or 'ntlm', got %r" % transport)
        personalities = list(personalities)
        for personality in personalities:
            if personality in NO_WINRM:
                raise ValueError("personality %r has no WinRM and cannot be served; serve one of "
                                 "modern, 2008r2, 2003, xp" % personality)
        self.state_dir = os.path.abspath(state_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        saved = self._load()
        self.user = user
        self.password = password or saved.get("password") or secrets.token_urlsafe(12)
        self.transport = transport
        self.https_only = https_only
        self.http_port, self.https_port = http_port, https_port
        self.host_factory = host_factory
        self.hosts: list[ServedHost] = []
        self.listener: Listener | None = None
        addresses = loopback_addresses(base_address, count)
        width = max(3, len(str(count)))
        self._plan = [("%s%0*d" % (name_prefix, width, i + 1), address, personalities[i % len(personalities)])
                      for i, address in enumerate(addresses)]
        self.latency_ms = latency_ms

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> "Estate":
        users = {self.user: self.password}
        domain_store = os.path.join(self.state_dir, "domain")
        listener = Listener()
        tls = tls_context(self.state_dir, [address for _n, address, _p in self._plan])
        user_file = auth.write_ntlm_user_file(os.path.join(self.state_dir, "auth", "ntlm-users"),
                                              [name for name, _a, _p in self._plan], users)
        try:
            for name, address, personality in self._plan:
                host_dir = os.path.join(self.state_dir, "hosts", name)
                os.makedirs(host_dir, exist_ok=True)
                host = self.host_factory(name, address, personality, host_dir, dict(users), domain_store)
                served = ServedHost(host, name, address, users, user_file, personality)
                served.latency_ms = self.latency_ms
                self.hosts.append(served)
                if not self.https_only:
                    served.http_port = listener.listen(served, "http", self.http_port)
                served.https_port = listener.listen(served, "https", self.https_port, tls)
        except Exception:
            listener.stop()
            raise
        listener.start()
        self.listener = listener
        self._save()
        return self

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        for served in self.hosts:
            close = getattr(served.host, "close", None)
            if close:
                close()

    def __enter__(self) -> "Estate":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # access ----------------------------------------------------------------------------------
    def host(self, name: str) -> ServedHost:
        for served in self.hosts:
            if served.name == name:
                return served
        raise KeyError("no host %r in this estate; hosts: %s" % (name, ", ".join(h.name for h in self.hosts)))

    def endpoint(self, served: ServedHost, scheme: str | None = None) -> str:
        scheme = scheme or ("https" if self.https_only else "http")
        port = served.https_port if scheme == "https" else served.http_port
        return "%s://%s:%d/wsman" % (scheme, served.address, port)

    def host_vars(self, served: ServedHost, scheme: str | None = None) -> dict:
        scheme = scheme or ("https" if self.https_only else "http")
        return {"ansible_host": served.address,
                "ansible_port": served.https_port if scheme == "https" else served.http_port,
                "ansible_winrm_scheme": scheme,
                "winsim_personality": served.personality}

    def inventory(self, scheme: str | None = None, transport: str | None = None) -> dict:
        """The Ansible inventory as a dict: a group per personality (`win_modern`, `win_2003`, ...;
        a bare `2003` is not a valid group name) under `windows`, connection vars for all."""
        groups: dict[str, dict] = {}
        for served in self.hosts:
            groups.setdefault("win_" + served.personality, {"hosts": {}})["hosts"][served.name] = \
                self.host_vars(served, scheme)
        return {"all": {
            "vars": {"ansible_connection": "winrm",
                     "ansible_winrm_transport": transport or self.transport,
                     "ansible_winrm_server_cert_validation": "ignore",
                     "ansible_user": self.user,
                     "ansible_password": self.password},
            "children": {"windows": {"children": groups}}}}

    def write_inventory(self, path: str, scheme: str | None = None, transport: str | None = None) -> str:
        path = os.path.abspath(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Written aside and renamed: whoever waits for the file to appear (a script, a test) reads it whole.
        with open(os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write("# Written by winsim; valid while the estate in %s is served.\n" % self.state_dir)
            yaml.safe_dump(self.inventory(scheme, transport), handle, default_flow_style=False, sort_keys=False)
        os.replace(path + ".tmp", path)
        return path

    # the estate file for `winsim ctl` ---------------------------------------------------------
    def _load(self) -> dict:
        try:
            with open(os.path.join(self.state_dir, ESTATE_FILE)) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        description = {"user": self.user, "password": self.password, "pid": os.getpid(),
                       "hosts": [served.status() for served in self.hosts]}
        path = os.path.join(self.state_dir, ESTATE_FILE)
        with open(os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            json.dump(description, handle, indent=1)
        os.replace(path + ".tmp", path)


def control(state_dir: str, name: str, settings: dict, timeout: float = 30.0) -> dict:
    """POST settings to a served host's control endpoint (as `winsim ctl` does); returns its status."""
    import requests
    import urllib3

    with open(os.path.join(state_dir, ESTATE_FILE)) as handle:
        description = json.load(handle)
    hosts = {h["name"]: h for h in description["hosts"]}
    if name not in hosts:
        raise KeyError("no host %r in the estate at %s; hosts: %s" % (name, state_dir, ", ".join(hosts)))
    host = hosts[name]
    if host.get("http_port"):
        url = "http://%s:%d%s" % (host["address"], host["http_port"], CONTROL_PATH)
    else:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        url = "https://%s:%d%s" % (host["address"], host["https_port"], CONTROL_PATH)
    response = requests.post(url, json=settings, auth=(description["user"], description["password"]),
                             verify=False, timeout=timeout)
    if response.status_code != 200:
        detail = response.json().get("error") if response.headers.get("Content-Type") == "application/json" else ""
        raise RuntimeError("%s refused the control request (HTTP %d) %s" % (name, response.status_code, detail))
    return response.json()
