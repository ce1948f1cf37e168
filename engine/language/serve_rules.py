"""What the serve config's schema cannot say: paths that must exist, patterns that must
compile, names that must be unique. Shared by `runbook serve` (which refuses to start on
them) and `runbook validate` (which reports them with every other file's problems)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from . import cache
from .diagnostics import Diagnostic
from .loader import Document
from .serve_routes import Load, check_routes

RULE = "RB013"


def check_serve(doc: Document, load: Load | None = None) -> list[Diagnostic]:
    """Every problem of a schema-valid serve config, positioned; with `load` (a runbook
    loader), the routes' policies checked against their runbooks too."""
    base = Path(doc.file).resolve().parent
    entries = doc.data.get("runbooks", [])
    paths = [base / entry for entry in entries]
    found = [doc.diagnostic(("runbooks", i), f"no such runbook directory or file: {entry}", RULE)
             for i, (entry, path) in enumerate(zip(entries, paths, strict=True)) if not path.exists()]
    scenarios = doc.data.get("scenarios", [])
    found += [doc.diagnostic(("scenarios", i), f"no such scenario directory or file: {entry}", RULE)
              for i, entry in enumerate(scenarios) if not (base / entry).exists()]
    paths += [base / entry for entry in scenarios]
    channels = doc.data.get("channels")
    for path in [*paths, *([base / channels] if channels is not None else [])]:
        cache.note(path)  # `runbook validate` keeps the result only while these stay as they are
    if channels is not None and not (base / channels).is_file():
        found.append(doc.diagnostic(("channels",), f"no such channels config: {channels}", RULE))
    found += [*_patterns(doc), *_people(doc), *_proxies(doc)]
    return found if found or load is None else check_routes(doc, load)  # runbooks loaded only for a sound config


def _patterns(doc: Document) -> list[Diagnostic]:
    found = []
    for i, route in enumerate(doc.data.get("routes", [])):
        for label, pattern in route.get("match", {}).get("labels_match", {}).items():
            try:
                re.compile(pattern)
            except re.error as exc:
                found.append(doc.diagnostic(("routes", i, "match", "labels_match", label),
                                            f"not a regular expression: {exc}", RULE))
    return found


def _people(doc: Document) -> list[Diagnostic]:
    found, seen = [], set()
    for i, person in enumerate(doc.data.get("people", [])):
        if person["name"] in seen:
            found.append(doc.diagnostic(("people", i, "name"), f"person {person['name']!r} is listed twice", RULE))
        seen.add(person["name"])
    return found


def _proxies(doc: Document) -> list[Diagnostic]:
    proxies = doc.data.get("console", {}).get("trusted_header", {}).get("proxies", [])
    found = []
    for i, proxy in enumerate(proxies):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            found.append(doc.diagnostic(("console", "trusted_header", "proxies", i),
                                        f"not an IP address or network: {proxy!r}", RULE))
    return found
