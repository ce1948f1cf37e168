"""A real SMTP server on 127.0.0.1 for the email channel's tests: STARTTLS with a
certificate from a CA made for the test (its file is `ca_file`), AUTH PLAIN only once
the connection is encrypted (as real submission servers do), and scripted faults.

Threads and `ssl` rather than a library: the tests need the exact wire behaviour
(which extensions are offered when, what a refusal says), and this is a few dozen lines.
"""

from __future__ import annotations

import base64
import datetime
import email
import email.policy
import ipaddress
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, BinaryIO


@dataclass
class Received:
    """One mail the server accepted, with how it came: encrypted, and who logged in."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    user: str | None


@dataclass
class Script:
    """How the server behaves: the login it accepts, whether it offers STARTTLS, and
    replies to give instead of the normal ones (`greet`: per connection, in turn)."""

    user: str = "runbook"
    password: str = "s3cret-smtp-pass"
    starttls: bool = True
    greet: list[str] = field(default_factory=list)  # e.g. ["421 4.3.2 try later"]: first connection refused


class SmtpServer:
    """Use with `with`; `port`, `ca_file`, `received` and `logins` (every AUTH attempt) are what tests read."""

    def __init__(self, directory: Path, script: Script | None = None) -> None:
        self.script = script or Script()
        self.received: list[Received] = []
        self.logins: list[tuple[str, str, bool]] = []  # user, password, over TLS
        self.ca_file, self.context = _certificates(directory)
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                _Session(owner, self.request).run()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> SmtpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class _Session:
    """One SMTP conversation."""

    def __init__(self, owner: SmtpServer, sock: socket.socket) -> None:
        self.owner, self.sock, self.tls, self.user = owner, sock, False, None
        self.file: BinaryIO = sock.makefile("rb")
        self.sender: str | None = None
        self.recipients: list[str] = []

    def reply(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def run(self) -> None:
        script = self.owner.script
        if script.greet:
            self.reply(script.greet.pop(0))
            return
        self.reply("220 127.0.0.1 ESMTP test")
        while True:
            line = self.file.readline(1000)
            if not line:
                return
            verb, _, arg = line.decode().strip().partition(" ")
            if not self.command(verb.upper(), arg):
                return

    def command(self, verb: str, arg: str) -> bool:
        handlers: dict[str, Any] = {"EHLO": self.ehlo, "STARTTLS": self.starttls, "AUTH": self.auth,
                                    "MAIL": self.mail, "RCPT": self.rcpt, "DATA": self.data}
        if verb == "QUIT":
            self.reply("221 2.0.0 bye")
            return False
        if verb in ("RSET", "NOOP"):
            self.reply("250 2.0.0 ok")
            return True
        handler = handlers.get(verb)
        if handler is None:
            self.reply("502 5.5.2 command not recognised")
            return True
        handler(arg)
        return True

    def ehlo(self, arg: str) -> None:
        offers = ["127.0.0.1", "SIZE 1000000", "8BITMIME"]
        if self.owner.script.starttls and not self.tls:
            offers.append("STARTTLS")
        if self.tls:
            offers.append("AUTH PLAIN")  # never a password in the clear
        for line in offers[:-1]:
            self.reply(f"250-{line}")
        self.reply(f"250 {offers[-1]}")

    def starttls(self, arg: str) -> None:
        self.reply("220 2.0.0 ready to start TLS")
        self.sock = self.owner.context.wrap_socket(self.sock, server_side=True)
        self.file, self.tls = self.sock.makefile("rb"), True

    def auth(self, arg: str) -> None:
        mechanism, _, initial = arg.partition(" ")
        if mechanism.upper() != "PLAIN" or not self.tls:
            self.reply("504 5.5.4 mechanism not available")
            return
        _, user, password = base64.b64decode(initial).decode().split("\0")
        self.owner.logins.append((user, password, self.tls))
        if (user, password) != (self.owner.script.user, self.owner.script.password):
            self.reply("535 5.7.8 Authentication credentials invalid")
            return
        self.user = user
        self.reply("235 2.7.0 Authentication successful")

    def mail(self, arg: str) -> None:
        if self.user is None:
            self.reply("530 5.7.0 Authentication required")
            return
        self.sender, self.recipients = arg.partition(":")[2].split()[0].strip("<>"), []
        self.reply("250 2.1.0 ok")

    def rcpt(self, arg: str) -> None:
        address = arg.partition(":")[2].strip().strip("<>")
        if address.endswith("@nowhere.example"):
            self.reply("550 5.1.1 no such user")
            return
        self.recipients.append(address)
        self.reply("250 2.1.5 ok")

    def data(self, arg: str) -> None:
        self.reply("354 end with <CRLF>.<CRLF>")
        lines = []
        while (line := self.file.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.owner.received.append(Received(self.sender or "", self.recipients, message, self.tls, self.user))
        self.reply("250 2.0.0 queued")


def _certificates(directory: Path) -> tuple[str, ssl.SSLContext]:
    """A CA (its PEM file for clients to trust) and a server context with a certificate
    it signed for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "runbook test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return str(ca_file), context
