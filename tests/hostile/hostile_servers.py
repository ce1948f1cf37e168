"""Hostile HTTP servers on 127.0.0.0/8 for the hostile suite: each answers from a plain
socket, so it can misbehave as no well-mannered server library would (never finish,
trickle, send gigabytes, lie about lengths, redirect anywhere), and records what it got."""

from __future__ import annotations

import functools
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[["Exchange"], None]


@dataclass
class Exchange:
    """One request as received, and the socket to answer it on."""

    conn: socket.socket
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    server: Server

    def send(self, data: bytes) -> None:
        try:
            self.conn.sendall(data)
        except OSError:
            pass

    def answer(self, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        head = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
        self.send(f"HTTP/1.1 {status} X\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in head.items())
                  + b"\r\n" + body)


@dataclass
class Server:
    """Serves `handler` on address:port (a free port) in a daemon thread per connection."""

    handler: Handler
    address: str = "127.0.0.1"
    received: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.address, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            exchange = _read_request(conn, self)
            if exchange is not None:
                self.received.append({"path": exchange.path, "headers": exchange.headers,
                                      "body": exchange.body.decode("utf-8", "replace")})
                self.handler(exchange)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def _read_request(conn: socket.socket, server: Server) -> Exchange | None:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length") or 0)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
    except (OSError, ValueError):
        return None
    return Exchange(conn, method, path, headers, body, server)


# -- behaviours ------------------------------------------------------------------------------------


def echo(ex: Exchange) -> None:
    """Answers with what it got, as JSON: a secret sent comes back JSON-escaped."""
    ex.answer(200, json.dumps({"path": ex.path, "headers": ex.headers,
                               "body": ex.body.decode("utf-8", "replace")}).encode(),
              {"Content-Type": "application/json"})


def never_answers(ex: Exchange) -> None:
    ex.server.stop.wait(60)


def trickles(ex: Exchange) -> None:
    """Headers, then one byte of a promised gigabyte a second."""
    ex.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
    for _ in range(60):
        if ex.server.stop.is_set():
            return
        ex.send(b"x")
        time.sleep(1)


def floods(ex: Exchange) -> None:
    """An endless body, as fast as the reader takes it (chunked, never a last chunk)."""
    ex.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
    chunk = b"100000\r\n" + b"y" * 0x100000 + b"\r\n"
    deadline = time.monotonic() + 60
    while not ex.server.stop.is_set() and time.monotonic() < deadline:
        try:
            ex.conn.sendall(chunk)
        except OSError:
            return


def gzip_bomb(ex: Exchange) -> None:
    """A few kB that inflate to 64 MB, for a client that inflates what it is sent."""
    ex.answer(200, _gzip_bomb(), {"Content-Encoding": "gzip", "Content-Type": "text/plain"})


@functools.cache
def _gzip_bomb() -> bytes:
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    zeros = b"\0" * (1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()


def lies_about_length(ex: Exchange) -> None:
    ex.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\nshort")


def deep_json(ex: Exchange) -> None:
    ex.answer(200, b"[" * 500 + b"]" * 500, {"Content-Type": "application/json"})


def huge_numbers(ex: Exchange) -> None:
    ex.answer(200, b'{"a": ' + b"9" * 5000 + b', "b": 1e99999, "c": NaN}', {"Content-Type": "application/json"})


def unknown_charset(ex: Exchange) -> None:
    ex.answer(200, "caf\u00e9 \u2713".encode("utf-8"), {"Content-Type": "text/plain; charset=x-unknown-42"})


def invalid_utf8(ex: Exchange) -> None:
    ex.answer(200, b"\xff\xfe\xc3\x28 bad", {"Content-Type": "text/plain; charset=utf-8"})


def garbage(ex: Exchange) -> None:
    ex.send(b"\x00\x01NOT HTTP AT ALL\r\n\r\n")


def header_flood(ex: Exchange) -> None:
    ex.send(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(5000)) + b"Content-Length: 0\r\n\r\n")


def long_header(ex: Exchange) -> None:
    ex.send(b"HTTP/1.1 200 OK\r\nX-Long: " + b"z" * (8 << 20) + b"\r\nContent-Length: 0\r\n\r\n")


def resets(ex: Exchange) -> None:
    ex.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def redirect_to(location: str, status: int = 302) -> Handler:
    def handler(ex: Exchange) -> None:
        ex.answer(status, b"", {"Location": location})

    return handler


def redirect_loop(ex: Exchange) -> None:
    ex.answer(302, b"", {"Location": ex.path})
