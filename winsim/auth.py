"""Who may talk to a winsim host: HTTP Basic, and NTLM with WinRM message encryption.

NTLM is pyspnego's acceptor. It reads the users it accepts from the file named by NTLM_USER_FILE
(`DOMAIN:USER:PASSWORD` lines), a process-wide setting, so this module keeps one such file per
process holding every live host's users; after the handshake each host still checks that the
authenticated user is one of its own. Passwords never reach a log line.

Encrypted messages follow [MS-WSMV] 2.2.9.1.1 (Negotiate): a multipart/encrypted body whose
octet-stream part is a 4-byte little-endian signature length, the signature, then the sealed
message.
"""
from __future__ import annotations

import atexit
import base64
import binascii
import os
import struct
import tempfile
import threading

import spnego
import spnego.exceptions

ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = 'multipart/encrypted;protocol="%s";boundary="Encrypted Boundary"' % ENCRYPTED_PROTOCOL
BOUNDARY = b"--Encrypted Boundary"
OCTET_HEADER = b"\tContent-Type: application/octet-stream\r\n"


class AuthError(Exception):
    """Authentication failed: the server answers 401 and runs nothing."""


class NoCredentials(AuthError):
    """The request carried no credentials: 401 with the challenges, the normal first step."""


def check_basic(header: str, users: dict[str, str]) -> str:
    """`Basic <base64 user:password>` -> the user name, or AuthError."""
    try:
        scheme, _, blob = header.partition(" ")
        user, sep, password = base64.b64decode(blob.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthError("malformed Basic credentials") from None
    if scheme.lower() != "basic" or not sep:
        raise AuthError("malformed Basic credentials")
    name = find_user(user, users)
    if name is None or users[name] != password:
        raise AuthError("bad user name or password for %r" % user)
    return name


def find_user(user: str, users: dict[str, str], machine: str = "") -> str | None:
    """Windows user names are case-insensitive and may carry the machine or '.' as domain."""
    domain, sep, name = user.rpartition("\\")
    if sep and domain.lower() not in (".", machine.lower()):
        return None
    return next((known for known in users if known.lower() == name.lower()), None)


class _NtlmUserFile:
    """The process-wide NTLM_USER_FILE: the union of every registered host's users."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries: dict[tuple[str, str], tuple[str, int]] = {}  # (DOMAIN, user) -> (password, refs)
        self.path: str | None = None

    def register(self, machine: str, users: dict[str, str]) -> None:
        with self.lock:
            for user, password in users.items():
                for domain in ("", machine.upper()):
                    key = (domain, user.lower())
                    known = self.entries.get(key)
                    if known and known[0] != password:
                        raise ValueError(
                            "NTLM user %r is already served with another password in this process; "
                            "NTLM_USER_FILE is process-wide, so give %r the same password everywhere "
                            "or run the estates in separate processes" % (user, user))
                    self.entries[key] = (password, (known[1] if known else 0) + 1)
            self._write()

    def unregister(self, machine: str, users: dict[str, str]) -> None:
        with self.lock:
            for user in users:
                for domain in ("", machine.upper()):
                    key = (domain, user.lower())
                    password, refs = self.entries.get(key, ("", 1))
                    if refs <= 1:
                        self.entries.pop(key, None)
                    else:
                        self.entries[key] = (password, refs - 1)
            self._write()

    def _write(self) -> None:
        if self.path is None:
            fd, self.path = tempfile.mkstemp(prefix="winsim-ntlm-", suffix=".users")
            os.close(fd)
            atexit.register(lambda: os.path.exists(self.path) and os.unlink(self.path))
        lines = "".join("%s:%s:%s\n" % (domain, user, password)
                        for (domain, user), (password, _refs) in sorted(self.entries.items()))
        tmp = self.path + ".tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(lines)
        os.replace(tmp, self.path)
        os.environ["NTLM_USER_FILE"] = self.path


NTLM_USERS = _NtlmUserFile()


class NtlmSession:
    """NTLM state of one TCP connection (NTLM authenticates the connection, not each request)."""

    def __init__(self, machine: str, users: dict[str, str]):
        self.machine = machine
        self.users = users
        self.context = None
        self.user: str | None = None

    @property
    def complete(self) -> bool:
        return self.user is not None

    def step(self, header: str) -> str | None:
        """`Negotiate|NTLM <token>` -> the token to send back (None when the handshake is done)."""
        scheme, _, blob = header.partition(" ")
        try:
            token = base64.b64decode(blob.strip(), validate=True)
        except binascii.Error:
            raise AuthError("malformed %s token" % scheme) from None
        if self.context is None or token.startswith(b"NTLMSSP\x00\x01"):
            protocol = "ntlm" if token.startswith(b"NTLMSSP\x00") else "negotiate"
            self.context = spnego.server(hostname=self.machine, service="HTTP", protocol=protocol)
            self.user = None
        try:
            out = self.context.step(token)
        except spnego.exceptions.SpnegoError as err:
            self.context = None
            raise AuthError("NTLM authentication failed: %s" % err.message) from None
        if self.context.complete:
            principal = self.context.client_principal or ""
            name = find_user(principal, self.users, self.machine)
            if name is None:
                self.context = None
                raise AuthError("user %r is not a user of %s" % (principal, self.machine))
            self.user = name
        return base64.b64encode(out).decode("ascii") if out else None

    def unwrap(self, body: bytes) -> bytes:
        """A multipart/encrypted request body -> the SOAP message; tampering is an AuthError."""
        try:
            header_end = body.index(OCTET_HEADER)
            declared = int(body[:header_end].split(b"Length=")[1].split(b"\r\n")[0])
            payload = body[header_end + len(OCTET_HEADER):]
            if payload.endswith(BOUNDARY + b"--\r\n"):
                payload = payload[:-len(BOUNDARY + b"--\r\n")]
            sig_len = struct.unpack("<I", payload[:4])[0]
            message = self.context.unwrap_winrm(payload[4:4 + sig_len], payload[4 + sig_len:])
        except (ValueError, IndexError, struct.error, spnego.exceptions.SpnegoError) as err:
            raise AuthError("cannot decrypt the message: %s" % err) from None
        if len(message) != declared:
            raise AuthError("decrypted length %d differs from the declared %d" % (len(message), declared))
        return message

    def wrap(self, message: bytes) -> bytes:
        """A SOAP message -> the multipart/encrypted body to send with ENCRYPTED_CONTENT_TYPE."""
        sealed = self.context.wrap_winrm(message)
        return (BOUNDARY + b"\r\n"
                + b"\tContent-Type: " + ENCRYPTED_PROTOCOL.encode() + b"\r\n"
                + b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d\r\n" % len(message)
                + BOUNDARY + b"\r\n" + OCTET_HEADER
                + struct.pack("<I", len(sealed.header)) + sealed.header + sealed.data
                + BOUNDARY + b"--\r\n")
