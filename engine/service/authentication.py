"""How a delivery proves its sender, per source: a bearer token, basic auth, or an
HMAC-SHA256 signature of the body made as the sender makes it.

- Grafana: `X-Grafana-Alerting-Signature: <hex>` of the body, or of `<timestamp>:<body>`
  when the contact point names a Timestamp Header (then a timestamp more than five
  minutes off is refused: a replayed delivery).
- PagerDuty: `X-PagerDuty-Signature: v1=<hex>,v1=<hex>`, one value per signing secret
  while PagerDuty rotates them: any one that matches will do.
- Anyone else: `X-Signature: sha256=<hex>` (or bare hex, or several, comma-separated).

Secrets are read from the environment once, when the service starts; every comparison
takes constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from engine.errors import UsageError

from .config import Source

SIGNATURE_HEADERS = {"grafana": "X-Grafana-Alerting-Signature", "pagerduty": "X-PagerDuty-Signature"}
DEFAULT_SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_SKEW = 300.0


@dataclass(frozen=True)
class Guard:
    """What a source's deliveries must show; check() says why one does not."""

    source: Source
    secret: str = ""

    @classmethod
    def of(cls, source: Source, environ: Mapping[str, str] = os.environ) -> Guard:
        """The guard of `source`; UsageError when its secret's variable is not set."""
        if source.auth is None:
            return cls(source)
        secret = environ.get(source.secret_env or "", "")
        if not secret:
            raise UsageError(f"source {source.name!r}: the environment variable {source.secret_env} holding its "
                             f"{source.auth} secret is not set")
        return cls(source, secret)

    def check(self, headers: Mapping[str, str], body: bytes, clock: Callable[[], float] = time.time) -> str | None:
        """None when the delivery proves its sender; else why not (for a 401). `headers`
        are looked up by lower-case name."""
        if self.source.auth == "bearer":
            return self._bearer(headers.get("authorization", ""))
        if self.source.auth == "basic":
            return self._basic(headers.get("authorization", ""))
        if self.source.auth == "hmac":
            return self._hmac(headers, body, clock)
        return None

    def _bearer(self, given: str) -> str | None:
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "missing credentials: expected Authorization: Bearer <token>"
        return None if _same(token.strip(), self.secret) else "the bearer token is not this source's"

    def _basic(self, given: str) -> str | None:
        scheme, _, encoded = given.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            return "missing credentials: expected Authorization: Basic (username and password)"
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "the Basic credentials are not base64 of username:password"
        right = _same(user, self.source.username or "") & _same(password, self.secret)
        return None if right else "wrong username or password"

    def _hmac(self, headers: Mapping[str, str], body: bytes, clock: Callable[[], float]) -> str | None:
        name = self.source.header or SIGNATURE_HEADERS.get(self.source.type, DEFAULT_SIGNATURE_HEADER)
        given = headers.get(name.lower(), "").strip()
        if not given:
            return f"missing {name} header: deliveries to this source must be signed"
        signed = body
        if self.source.timestamp_header:
            stamp = headers.get(self.source.timestamp_header.lower(), "").strip()
            problem = _stale(stamp, self.source.timestamp_header, clock())
            if problem:
                return problem
            signed = stamp.encode() + b":" + body
        expected = hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        candidates = _signatures(given, pagerduty=self.source.type == "pagerduty")
        matched = False
        for candidate in candidates:
            matched |= _same(candidate.lower(), expected)
        return None if matched else f"no signature in {name} matches the body (signed with another secret, or altered)"


def _stale(stamp: str, header: str, now: float) -> str | None:
    if not stamp:
        return f"missing {header} header: the signature covers it"
    try:
        when = float(stamp)
    except ValueError:
        return f"{header} {stamp[:40]!r} is not a Unix time"
    if when > 1e11:  # milliseconds
        when /= 1000
    if abs(now - when) > TIMESTAMP_SKEW:
        return f"{header} is {abs(now - when):.0f}s away from now (more than {TIMESTAMP_SKEW:.0f}s): a replay?"
    return None


def _signatures(header: str, *, pagerduty: bool) -> list[str]:
    """The hex digests in a signature header: `v1=<hex>` entries for PagerDuty (other
    versions it may add later are not ours to check), `sha256=<hex>` or bare hex else."""
    found = []
    for part in header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if pagerduty:
            if sep and scheme == "v1":
                found.append(value.strip())
        else:
            found.append(value.strip() if sep and scheme.lower() in ("sha256", "v1") else part.strip())
    return found


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
