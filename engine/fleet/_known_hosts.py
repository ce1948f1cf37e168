"""Host keys we trust: the user's known_hosts and the project's, checked and recorded.

An unknown key is refused unless --accept-new-host-keys (then recorded, like OpenSSH's
`accept-new`); a changed key is always refused.

The files are indexed by host name: paramiko's HostKeys scans every entry on each
lookup, and on each line it loads (to drop duplicates), so a 1,000-host known_hosts cost
0.3 s to load and 0.7 ms per host to look up. Here a lookup is one dict access for plain
names, plus one HMAC per hashed entry (`|1|salt|hash`, HashKnownHosts) for a name not
looked up before; keys are decoded only for the hosts looked up. What a lookup finds is
what paramiko's would: every line naming the host, in file order, the first key of each
type winning; lines with too few fields or a key paramiko cannot read are ignored, as
there. A key on a `@revoked` line is refused for every host (paramiko failed on such a
line, and on `@cert-authority`, which is ignored: certificates are not used).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._ssh_config import ConnectFailed, Endpoint, SshOptions, load_paramiko


def fingerprint(key: Any) -> str:
    """`SHA256:...` as ssh-keygen -l prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class _Line:
    """One key of a known_hosts line, decoded on first use."""

    order: int
    kind: str
    blob: str


@dataclass
class HostKeyIndex:
    """known_hosts lines by host name; `lookup` gives type -> key, as paramiko's HostKeys."""

    plain: dict[str, list[_Line]] = field(default_factory=dict)
    hashed: list[tuple[bytes, bytes, _Line]] = field(default_factory=list)  # (salt, hmac, line)
    revoked: set[str] = field(default_factory=set)  # base64 keys of @revoked lines
    count: int = 0
    _found: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def load(self, path: str) -> None:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for text in handle:
                self.add_line(text.strip())

    def add_line(self, text: str) -> None:
        if not text or text.startswith("#"):
            return
        fields = text.replace("\t", " ").split(" ")
        if fields[0].startswith("@"):
            if fields[0] == "@revoked" and len(fields) >= 4:
                self.revoked.add(fields[3])
            return
        if len(fields) < 3:
            return
        self.count += 1
        line = _Line(self.count, fields[1], fields[2])
        for name in fields[0].split(","):
            self._add_name(name, line)
        self._found.clear()

    def _add_name(self, name: str, line: _Line) -> None:
        if name.startswith("|1|"):
            parts = name.split("|")
            try:
                self.hashed.append((base64.b64decode(parts[2]), base64.b64decode(parts[3]), line))
            except (IndexError, binascii.Error):
                pass  # a malformed hashed name matches nothing, as in paramiko
            return
        self.plain.setdefault(name, []).append(line)

    def lookup(self, name: str) -> dict[str, Any] | None:
        """Key type -> key for `name`, or None when no line names it."""
        if name not in self._found:
            self._found[name] = self._keys(self._lines(name))
        return self._found[name]

    def _lines(self, name: str) -> list[_Line]:
        lines = list(self.plain.get(name, ()))
        if not name.startswith("|1|"):
            wanted = name.encode()
            lines += [line for salt, digest, line in self.hashed
                      if hmac.compare_digest(hmac.new(salt, wanted, hashlib.sha1).digest(), digest)]
        return sorted(lines, key=lambda line: line.order)

    @staticmethod
    def _keys(lines: list[_Line]) -> dict[str, Any] | None:
        if not lines:
            return None
        paramiko = load_paramiko()
        keys: dict[str, Any] = {}
        for line in lines:
            try:
                key = paramiko.PKey.from_type_string(line.kind, base64.b64decode(line.blob))
            except (binascii.Error, ValueError, paramiko.SSHException, paramiko.UnknownKeyType):
                continue  # paramiko skips a key it cannot read
            keys.setdefault(key.get_name(), key)
        return keys or None


class KnownHosts:
    """Host keys we trust: checks, and records new ones when allowed."""

    def __init__(self, options: SshOptions) -> None:
        self.options = options
        self._keys = HostKeyIndex()
        self._loaded: set[str] = set()
        self._lock = threading.Lock()

    def _lookup(self, ep: Endpoint) -> dict[str, Any] | None:
        with self._lock:
            for path in [*map(str, self.options.known_hosts), *ep.known_hosts]:
                if path not in self._loaded and os.path.isfile(path):
                    self._keys.load(path)
                    self._loaded.add(path)
            return self._keys.lookup(ep.known_name)

    def known_types(self, ep: Endpoint) -> list[str]:
        return list(self._lookup(ep) or ())

    def verify(self, ep: Endpoint, key: Any) -> None:
        entry = self._lookup(ep)
        kind, seen = key.get_name(), fingerprint(key)
        if key.get_base64() in self._keys.revoked:
            raise ConnectFailed("host_key", f"host key of {ep.name} ({ep.known_name}) is revoked: {kind} {seen} "
                                            "is on a @revoked line of known_hosts. Not connecting.")
        if not entry:
            self._unknown(ep, key)
            return
        known = entry.get(kind)
        if known is not None and known == key:
            return
        was = f"{kind} {fingerprint(known)}" if known is not None else \
            "only " + ", ".join(f"{k} {fingerprint(v)}" for k, v in entry.items())
        raise ConnectFailed("host_key", (
            f"HOST KEY CHANGED for {ep.name} ({ep.known_name}): it now presents {kind} {seen}, "
            f"known_hosts has {was}. This can mean someone is intercepting the connection. "
            "Not connecting, and --accept-new-host-keys never accepts a changed key; if the host "
            f"was reinstalled, remove the old key (ssh-keygen -R '{ep.known_name}') and verify the new one."))

    def _unknown(self, ep: Endpoint, key: Any) -> None:
        kind, seen = key.get_name(), fingerprint(key)
        target = self.options.write_known_hosts
        if not self.options.accept_new or target is None:
            where = f" (records it in {target})" if target else ""
            raise ConnectFailed("host_key", (
                f"host key of {ep.name} ({ep.known_name}) is not known: {kind} {seen}. Not connecting. "
                f"Check the fingerprint out of band, then run with --accept-new-host-keys{where} "
                f"or add it yourself: ssh-keyscan -p {ep.port} {ep.address} >> ~/.ssh/known_hosts"))
        self._record(target, ep.known_name, key)

    def _record(self, path: Path, name: str, key: Any) -> None:
        with self._lock:
            if self._keys.lookup(name):
                return
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            line = f"{name} {key.get_name()} {key.get_base64()}"
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
            self._keys.add_line(line)
