"""HTTP and HTTPS listeners that speak WinRM for many winsim hosts at once.

One accept thread watches every listening socket of an estate (selectors, no busy loop); each
accepted connection gets a thread that serves its keep-alive requests, which is what NTLM needs
(it authenticates the connection) and keeps the cost per idle host to two sockets.

Per request: optional latency, authentication (401 and nothing runs when it fails), optional
[MS-WSMV] 2.2.9.1.1 decryption, then /wsman (the Shell resource) or /winsim/control (JSON, the
fault/latency switchboard used by `python -m winsim ctl`).
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler

from ..shell import mutexes
from ..state import firewall
from . import auth, wsman
from .winrs import DropConnection, ShellService

log = logging.getLogger("winsim.server")

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
# Real WinRM offers both schemes when Basic is enabled (`winrm get winrm/config/service/auth`).
CHALLENGES = ("Negotiate", 'Basic realm="WSMAN"')
IDLE_KEEPALIVE = 120  # seconds; HTTP.sys's default idle connection timeout


class ServedHost:
    """One host as the network sees it: its addresses, users, shell service and injected faults."""

    def __init__(self, host, name: str, address: str, users: dict[str, str], ntlm_user_file: str,
                 personality: str = ""):
        self.host = host
        self.ntlm_user_file = ntlm_user_file
        self.name = name
        self.address = address
        self.personality = personality
        self.users = dict(users)
        self.service = ShellService(host, name)
        self.latency_ms = 0
        self.http_port: int | None = None
        self.https_port: int | None = None
        self.requests = 0
        self.wsman_requests = 0  # HTTP requests to /wsman, the count drop_request/drop_reply use
        self.drop_request: int | None = None  # absolute /wsman request number cut before handling
        self.drop_reply: int | None = None  # absolute /wsman request number handled, reply cut
        self.auth_failures = 0
        self.encrypted_requests = 0
        self.bytes_received = 0  # HTTP body bytes of requests and replies (bench/ counts a task's cost)
        self.bytes_sent = 0
        self.lock = threading.Lock()

    def control(self, settings: dict) -> dict:
        """Apply settings while serving; returns the status. Transport faults are handled here,
        host faults (fail_step, stop_service, reboot, ...) go to host.configure()."""
        settings = dict(settings)
        if "latency_ms" in settings:
            value = settings.pop("latency_ms")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError("latency_ms must be a whole number of milliseconds >= 0, got %r" % (value,))
            self.latency_ms = value
        if "drop_command" in settings:
            value = settings.pop("drop_command")
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError("drop_command must be k >= 1 (the k-th command from now) or null, "
                                 "got %r" % (value,))
            self.service.drop_during_command(value)
        for key in ("drop_request", "drop_reply"):
            if key in settings:
                value = settings.pop(key)
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                    raise ValueError("%s must be k >= 1 (the k-th HTTP request to /wsman from now) or "
                                     "null, got %r" % (key, value))
                with self.lock:
                    setattr(self, key, None if value is None else self.wsman_requests + value)
        if settings:
            configure = getattr(self.host, "configure", None)
            if configure is None:
                raise ValueError("host %s accepts no host settings (%s); transport settings are "
                                 "latency_ms, drop_command, drop_request and drop_reply"
                                 % (self.name, ", ".join(sorted(settings))))
            configure(**settings)
            if settings.get("reboot"):
                self.service.reset()        # every shell and command ends
                mutexes.forget(self.host)   # and the kernel's named objects with them
        return self.status()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no command runs on this host (a command whose client is gone still runs to
        its end); False if one still runs after `timeout` seconds."""
        return self.service.wait_idle(timeout)

    def status(self) -> dict:
        return {"name": self.name, "address": self.address, "personality": self.personality,
                "http_port": self.http_port, "https_port": self.https_port,
                "latency_ms": self.latency_ms, "drop_command": self.service.drop_command,
                "drop_request": self.drop_request, "drop_reply": self.drop_reply,
                "wsman_requests": self.wsman_requests, "running": self.service.running,
                "commands": self.service.commands_seen, "shells": len(self.service.shells),
                "requests": self.requests, "auth_failures": self.auth_failures,
                "encrypted_requests": self.encrypted_requests,
                "bytes_received": self.bytes_received, "bytes_sent": self.bytes_sent}


class _Endpoint:
    """What a listening socket serves; handed to the handler as its `server`."""

    def __init__(self, served: ServedHost, scheme: str, port: int, tls: ssl.SSLContext | None):
        self.served = served
        self.scheme = scheme
        self.port = port
        self.tls = tls

    @property
    def url(self) -> str:
        return "%s://%s:%d/wsman" % (self.scheme, self.served.address, self.port)


class WinRMHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: NTLM and message encryption live on the connection
    server_version = "Microsoft-HTTPAPI/2.0"  # what WinRM's HTTP.sys answers in Server:
    sys_version = ""
    timeout = IDLE_KEEPALIVE

    def setup(self):
        super().setup()
        self.ntlm: auth.NtlmSession | None = None
        self.cut_reply = False  # fault injection: this request is handled, its reply never sent

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug("%s %s", self.server.served.name, format % args)

    def do_GET(self):
        self._reply(405, b"", headers=[("Allow", "POST")])

    def do_POST(self):
        served: ServedHost = self.server.served
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # WinRM clients send Content-Length; reading no body here would pass for an empty POST.
            self.close_connection = True
            self._reply(411, b"")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self._filtered():
            return
        cut_request = False
        with served.lock:
            served.requests += 1
            served.bytes_received += len(body)
            if self.path == "/wsman":
                # Fault injection ("winsim ctl set drop_request=k / drop_reply=k"): a network cut
                # before the request reaches WinRM, or after WinRM handled it (the reply is lost).
                served.wsman_requests += 1
                if served.wsman_requests == served.drop_request:
                    served.drop_request, cut_request = None, True
                if served.wsman_requests == served.drop_reply:
                    served.drop_reply, self.cut_reply = None, True
        if cut_request:
            log.info("%s: fault injection: connection cut before request %d", served.name,
                     served.wsman_requests)
            self._hang_up()
            return
        if served.latency_ms:
            time.sleep(served.latency_ms / 1000.0)
        if self.path not in ("/wsman", "/winsim/control"):
            self._reply(404, b"")
            return
        try:
            user, challenge_reply = self._authenticate()
        except auth.AuthError as err:
            if not isinstance(err, auth.NoCredentials):
                with served.lock:
                    served.auth_failures += 1
                log.info("%s: 401 for %s: %s", served.name, self.client_address[0], err)
            self._reply(401, b"", headers=[("WWW-Authenticate", c) for c in CHALLENGES])
            return
        if user is None:  # NTLM handshake in progress
            self._reply(401, b"", headers=[("WWW-Authenticate", challenge_reply)])
            return
        extra = [("WWW-Authenticate", challenge_reply)] if challenge_reply else []
        encrypted = self.headers.get("Content-Type", "").lower().startswith("multipart/encrypted")
        if encrypted:
            if self.ntlm is None or not self.ntlm.complete:
                self._reply(401, b"", headers=[("WWW-Authenticate", c) for c in CHALLENGES])
                return
            with served.lock:
                served.encrypted_requests += 1
            try:
                body = self.ntlm.unwrap(body)
            except auth.AuthError as err:
                log.info("%s: 400: %s", served.name, err)
                self._reply(400, b"")
                return
        if not body:  # pywinrm's empty POST that sets up the encryption context
            self._reply(200, b"", headers=extra)
            return
        if self.path == "/winsim/control":
            self._control(body, extra)
            return
        try:
            request = wsman.parse_request(body)
        except wsman.WSManFault as fault:
            self._soap(500, wsman.fault_envelope(fault, "", served.name), encrypted, extra)
            return
        try:
            reply = served.service.handle(request, user, self.server.url)
            status = 200
        except wsman.WSManFault as fault:
            reply, status = wsman.fault_envelope(fault, request.message_id, served.name), 500
        except DropConnection as cut:
            log.info("%s: %s", served.name, cut)
            self._hang_up()
            return
        except Exception as err:  # a winsim bug: say so to the client, loudly, and keep serving
            log.exception("%s: %s failed", served.name, request.action)
            fault = wsman.provider_failure("winsim internal error: %s: %s" % (type(err).__name__, err))
            reply, status = wsman.fault_envelope(fault, request.message_id, served.name), 500
        self._soap(status, reply, encrypted, extra)

    def _authenticate(self) -> tuple[str | None, str | None]:
        """-> (user, token for WWW-Authenticate); user None while an NTLM handshake continues."""
        served: ServedHost = self.server.served
        header = self.headers.get("Authorization", "")
        scheme = header.split(" ", 1)[0].lower()
        if scheme == "basic":
            return auth.check_basic(header, served.users, served.name), None
        if scheme in ("negotiate", "ntlm"):
            if self.ntlm is None:
                self.ntlm = auth.NtlmSession(served.name, served.users, served.ntlm_user_file)
            token = self.ntlm.step(header)
            prefix = header.split(" ", 1)[0]
            reply = "%s %s" % (prefix, token) if token else None
            return (self.ntlm.user if self.ntlm.complete else None), reply
        if not header and self.ntlm is not None and self.ntlm.complete:
            return self.ntlm.user, None
        if not header:
            raise auth.NoCredentials("no credentials")
        raise auth.AuthError("unsupported authentication scheme %r" % scheme)

    def _control(self, body: bytes, extra: list) -> None:
        try:
            settings = json.loads(body)
            if not isinstance(settings, dict):
                raise ValueError("the control body must be a JSON object of settings")
            reply, status = self.server.served.control(settings), 200
        except (ValueError, TypeError) as err:
            reply, status = {"error": str(err)}, 400
        self._reply(status, json.dumps(reply).encode(), "application/json", extra)

    def _soap(self, status: int, reply: bytes, encrypted: bool, extra: list) -> None:
        if encrypted:
            self._reply(status, self.ntlm.wrap(reply), auth.ENCRYPTED_CONTENT_TYPE, extra)
        else:
            self._reply(status, reply, SOAP_CONTENT_TYPE, extra)

    def _filtered(self) -> bool:
        """Drop the connection, without a reply, when the host's IPsec policy blocks it (KB 813878
        warns that filters can make programs "stop responding"; winsim/state/firewall.py)."""
        served: ServedHost = self.server.served
        why = firewall.blocked_reason(served.host, self.client_address[0], self.client_address[1],
                                      self.server.port)
        if why is None:
            return False
        log.info("%s: dropped by IPsec filtering: %s", served.name, why)
        self._hang_up()
        return True

    def _hang_up(self) -> None:
        """Close the TCP connection without an HTTP answer, as a cut path looks to the client."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _reply(self, status: int, body: bytes, content_type: str | None = None, headers=()) -> None:
        if self._filtered():
            return
        if self.cut_reply:
            self.cut_reply = False
            log.info("%s: fault injection: reply cut", self.server.served.name)
            self._hang_up()
            return
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.server.served.lock:
            self.server.served.bytes_sent += len(body)


class Listener:
    """Accepts connections on many sockets from one thread and serves each in its own thread."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        # stop() writes a byte here so the accept loop wakes at once instead of polling.
        self._wake_read, self._wake_write = socket.socketpair()
        self.selector.register(self._wake_read, selectors.EVENT_READ, None)

    def listen(self, served: ServedHost, scheme: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Bind served.address:port (0 = any free port) and return the port bound."""
        try:
            sock = socket.create_server((served.address, port), backlog=128)
        except OSError as err:
            raise OSError(err.errno, "%s cannot listen on %s:%d (%s): %s" % (
                served.name, served.address, port, scheme, err.strerror or err)) from None
        sock.setblocking(False)
        bound = sock.getsockname()[1]
        self.sockets.append(sock)
        self.selector.register(sock, selectors.EVENT_READ, _Endpoint(served, scheme, bound, tls))
        return bound

    def start(self) -> None:
        self.thread = threading.Thread(target=self._accept_loop, name="winsim-accept", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._wake_write.send(b"x")
        if self.thread:
            self.thread.join(timeout=5)
        for sock in self.sockets:
            self.selector.unregister(sock)
            sock.close()
        self.sockets.clear()
        with self.lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.selector.close()
        self._wake_read.close()
        self._wake_write.close()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            for key, _events in self.selector.select():
                if key.data is None:  # woken by stop()
                    continue
                try:
                    conn, peer = key.fileobj.accept()
                except (BlockingIOError, OSError):
                    continue
                conn.setblocking(True)
                # Headers and body leave in two writes; without NODELAY, Nagle's algorithm and the
                # client's delayed ACK add 40 ms to every request.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                threading.Thread(target=self._serve, args=(conn, peer, key.data), daemon=True,
                                 name="winsim-conn").start()

    def _serve(self, conn: socket.socket, peer, endpoint: _Endpoint) -> None:
        with self.lock:
            self.connections.add(conn)
        try:
            if endpoint.tls is not None:
                conn.settimeout(10)
                conn = endpoint.tls.wrap_socket(conn, server_side=True)
                with self.lock:
                    self.connections.add(conn)
            WinRMHandler(conn, peer, endpoint)
        except (OSError, ssl.SSLError) as err:
            log.debug("%s: connection from %s ended: %s", endpoint.served.name, peer[0], err)
        except Exception:
            log.exception("%s: handler failed", endpoint.served.name)
        finally:
            with self.lock:
                self.connections.discard(conn)
            try:
                conn.close()
            except OSError:
                pass


def tls_context(state_dir: str, addresses: list[str]) -> ssl.SSLContext:
    """A server TLS context with a self-signed certificate kept in state_dir/tls (made once)."""
    folder = os.path.join(state_dir, "tls")
    cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    if not (os.path.exists(cert_path) and os.path.exists(key_path)):
        os.makedirs(folder, exist_ok=True)
        cert_pem, key_pem = _self_signed(addresses)
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(key_pem)
        with open(cert_path, "wb") as handle:
            handle.write(cert_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


def _self_signed(addresses: list[str]) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "winsim")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names = [x509.DNSName("localhost")] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
