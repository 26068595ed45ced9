"""Who may talk to a winsim host: HTTP Basic, and NTLM with WinRM message encryption.

NTLM is pyspnego's acceptor. It reads the users it accepts from the file named by NTLM_USER_FILE
(`DOMAIN:USER:PASSWORD` lines); each estate writes its own file (see _user_file for how one process
serves several). After the handshake the host still checks that the user is one of its own.
Passwords never reach a log line.

Encrypted messages follow [MS-WSMV] 2.2.9.1.1 (Negotiate): a multipart/encrypted body whose
octet-stream part is a 4-byte little-endian signature length, the signature, then the sealed
message.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import os
import struct
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


def check_basic(header: str, users: dict[str, str], machine: str = "") -> str:
    """`Basic <base64 user:password>` -> the user name, or AuthError."""
    try:
        scheme, _, blob = header.partition(" ")
        user, sep, password = base64.b64decode(blob.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthError("malformed Basic credentials") from None
    if scheme.lower() != "basic" or not sep:
        raise AuthError("malformed Basic credentials")
    name = find_user(user, users, machine)
    if name is None or users[name] != password:
        raise AuthError("bad user name or password for %r" % user)
    return name


def find_user(user: str, users: dict[str, str], machine: str = "") -> str | None:
    """Windows user names are case-insensitive and may carry the machine or '.' as domain."""
    domain, sep, name = user.rpartition("\\")
    if sep and domain.lower() not in (".", machine.lower()):
        return None
    return next((known for known in users if known.lower() == name.lower()), None)


def write_ntlm_user_file(path: str, machines: list[str], users: dict[str, str]) -> str:
    """pyspnego's user file (`DOMAIN:USER:PASSWORD`, mode 0600): each user bare, as .\\user and as
    MACHINE\\user, the spellings Windows accepts for a local account."""
    for user, password in users.items():
        if ":" in user + password or "\n" in user + password:
            raise ValueError("the password of %r contains ':' or a line break, which pyspnego's NTLM "
                             "user file (DOMAIN:USER:PASSWORD lines) cannot hold; choose one without" % user)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = "".join("%s:%s:%s\n" % (domain, user, password)
                    for user, password in users.items() for domain in ["", "."] + [m.upper() for m in machines])
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(lines)
    return path


# pyspnego's acceptor reads NTLM_USER_FILE from the environment when a context is made and when
# the client's AUTHENTICATE message is checked. The environment is process-wide, so those steps run
# under this lock with the variable pointing at the serving host's own file, which keeps each
# estate's users (and passwords) separate inside one process. A step takes about a millisecond.
_USER_FILE_LOCK = threading.Lock()


@contextlib.contextmanager
def _user_file(path: str):
    with _USER_FILE_LOCK:
        previous = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = path
        try:
            yield
        finally:
            if previous is None:
                del os.environ["NTLM_USER_FILE"]
            else:
                os.environ["NTLM_USER_FILE"] = previous


class NtlmSession:
    """NTLM state of one TCP connection (NTLM authenticates the connection, not each request)."""

    def __init__(self, machine: str, users: dict[str, str], user_file: str):
        self.machine = machine
        self.users = users
        self.user_file = user_file
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
        try:
            with _user_file(self.user_file):
                if self.context is None or token.startswith(b"NTLMSSP\x00\x01"):
                    protocol = "ntlm" if token.startswith(b"NTLMSSP\x00") else "negotiate"
                    self.context = spnego.server(hostname=self.machine, service="HTTP", protocol=protocol)
                    self.user = None
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
