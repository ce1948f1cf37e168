"""Journals nobody should have to read, read by everything that reads journals: `report`
(Markdown, HTML, JSON), `stats`, `scenario from-run` and `resume`. A report is built
from the journal alone, so a damaged or hostile journal must still give a report (or a
clean refusal), never a crash, a hang or a page that runs a script."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hostile_corpus import documents
from hostile_harness import Case, Runner

START = {"seq": 1, "t": "2026-03-01T10:00:00.000Z", "elapsed": 0.0, "event": "run.started", "run_id": "hostile",
         "runbook": "hostile", "title": "Hostile", "file": "/nonexistent/hostile.yaml", "mode": "live"}


def _lines(*records: dict[str, Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _step(seq: int, at: float, step: str = "s", **extra: Any) -> list[dict[str, Any]]:
    return [{"seq": seq, "elapsed": at, "event": "step.started", "step": step, "phase": "detection", "kind": "run"},
            {"seq": seq + 1, "elapsed": at, "event": "step.finished", "step": step, "phase": "detection",
             "kind": "run", "status": "ok", **extra}]


def journals() -> dict[str, bytes]:
    # The corpus' documents that read differently as JSON lines (the YAML bombs are just
    # lines that are not JSON here, as "not-json" is).
    docs = documents()
    out = {f"doc-{name}": docs[name] for name in ("deep-flow", "deep-json", "huge-line", "nul-byte", "invalid-utf8",
                                                  "utf16", "many-documents", "empty", "bom-crlf")}
    out.update({
        "deep-record": json.dumps({**START, "inputs": {"x": "PLACEHOLDER"}}).replace('"PLACEHOLDER"',
                                                                                    "[" * 100_000 + "]" * 100_000)
        .encode() + b"\n",
        "nested-3000": _lines(START, *_step(2, 1.0, stdout="PLACEHOLDER")).replace(b'"PLACEHOLDER"',
                                                                                  b"[" * 3000 + b"1" + b"]" * 3000),
        "huge-int-seq": b'{"seq": ' + b"1" * 5000 + b', "event": "run.started"}\n',
        "odd-times": _lines(START, *_step(2, float("nan")), *_step(4, -5.0), *_step(6, 1e300),
                            {"seq": 8, "elapsed": "soon", "event": "run.finished", "outcome": "resolved"}),
        "huge-elapsed": _lines(START, *_step(2, 1e300), {"seq": 4, "elapsed": 1e300, "event": "hint.shown"}),
        "wrong-types": _lines({**START, "inputs": [1, 2], "participants": "x"},
                              {"seq": [], "elapsed": {}, "event": ["step.started"], "step": {"a": 1}},
                              {"seq": 3, "event": "step.finished", "step": None, "hosts": [1, 2], "attempts": "many",
                               "items": "x", "status": 7, "duration": "long"},
                              {"seq": 4, "event": "host.finished", "host": {}, "duration": [], "step": 1},
                              {"seq": 5, "event": "notify.sent", "ok": "maybe", "channel": None},
                              {"seq": 6, "event": "run.finished", "outcome": {"a": 1}, "phases": "x"}),
        "surrogates": b'{"seq": 1, "elapsed": 0, "event": "run.started", "title": "\\udc00 \\ud800"}\n'
                      b'{"seq": 2, "elapsed": 1, "event": "step.started", "step": "\\udfff", "command": "\\ud83d"}\n',
        "markup": _lines({**START, "title": "<script>alert(1)</script>\x1b[2J | `x` [a](javascript:alert(1))"},
                         *_step(2, 1.0, "x", stdout="</pre><script>alert(2)</script>\x1b]0;pwned\x07")),
        "many-markers": _lines(START, *({"seq": i, "elapsed": 5.0, "event": "hint.shown", "step": "s",
                                         "hint": "h" * 50} for i in range(2, 2002))),
        "many-hosts": _lines(START, *_step(2, 1.0, hosts={f"h{i}": {"status": "failed", "duration": 1.0}
                                                           for i in range(5_000)})),
        "long-ids": _lines(START, *_step(2, 1.0, "s" * 500_000)),
        "many-resumes": _lines(*({**START, "seq": i, "elapsed": float(i), "resumed_from": "x"}
                                 for i in range(1, 2000))),
        "many-steps": _lines(START, *(r for i in range(2000) for r in _step(2 + 2 * i, float(i), f"s{i}"))),
        "torn": _lines(START, *_step(2, 1.0)) + b'{"seq": 4, "elap',
        "blank-lines": b"\n" * 10_000,
        "not-json": b"this is not a journal\n" * 1000,
    })
    return out


JOURNALS = journals()


@pytest.mark.parametrize("name", JOURNALS)
def test_hostile_journal(hostile: Runner, name: str) -> None:
    run = hostile.work / "runs" / "hostile-run"
    run.mkdir(parents=True)
    (run / "journal.jsonl").write_bytes(JOURNALS[name])
    kind = f"journal:{name}"
    out = hostile.work / "report"
    book = hostile.work / "hostile.yaml"  # the runbook the journals name, for coverage
    book.write_text("kind: runbook\nversion: 1\nid: hostile\ntitle: Hostile\nremediation:\n"
                    "  - {id: s, run: 'true', when: 'true', timeout: 1m}\n")
    hostile.check(Case(kind, "report", ["report", str(run)]),
                  Case(kind, "report", ["report", str(run), "-f", "html", "-o", f"{out}.html"]),
                  Case(kind, "report", ["report", str(run), "-f", "json"]),
                  Case(kind, "stats", ["stats", str(run.parent), "-f", "html"]),
                  Case(kind, "coverage", ["coverage", str(book), "--journals", str(run.parent), "-f", "html",
                                          "-o", f"{out}-coverage.html"]),
                  Case(kind, "from-run", ["scenario", "from-run", str(run)]),
                  Case(kind, "resume", ["resume", str(run), "--non-interactive", "--yes"]))
    page = out.with_suffix(".html")
    if page.exists():
        assert "<script>alert" not in page.read_text(encoding="utf-8", errors="replace")
