"""`runbook test`: every scenario unattended on the virtual clock; objectives are
assertions. Output like a test runner, JUnit XML for CI."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.errors import EngineError
from engine.language.diagnostics import Diagnostic
from engine.language.duration import format_duration
from engine.language.validation import ValidationFailed, discover, load_runbook, load_scenario

from .drill import DrillRun, DrillSetup, Scorecard, run_scenario


@dataclass
class CaseResult:
    """One scenario's verdict."""

    file: str
    scenario: str
    title: str = ""
    passed: bool = False
    error: str | None = None  # could not run at all (invalid file, missing runbook)
    drill: DrillRun | None = None
    seconds: float = 0.0

    @property
    def card(self) -> Scorecard | None:
        return self.drill.scorecard if self.drill else None

    def details(self) -> str | None:
        """The scorecard, for the JUnit report."""
        if self.card is None:
            return None
        from .drill import render_scorecard

        return render_scorecard(self.card)

    def summary(self) -> str:
        if self.error:
            return self.error
        assert self.drill is not None
        t = self.drill.timings
        simulated = format_duration(t.duration or 0.0)
        card = self.drill.scorecard
        if card.passed:
            return f"{t.outcome} in {simulated} simulated, {len(card.checks)} objective(s) met"
        missed = [f"{c.objective}: {c.actual} (objective {c.expected})" for c in card.missed]
        missed += [f"unscripted step {s}" for s in card.unscripted]
        return f"{t.outcome} in {simulated} simulated; " + "; ".join(missed)


@dataclass
class SuiteResult:
    cases: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed


def scenario_files(paths: Iterable[str]) -> list[str]:
    """Scenario files among the given files and directories (runbooks are skipped)."""
    from engine.language.loader import LoadError, load_file

    out = []
    for path in discover(paths):
        try:
            kind = load_file(path).kind
        except LoadError:
            kind = "scenario" if "scenario" in Path(path).name else None
        if kind == "scenario":
            out.append(path)
    return out


def run_case(path: str, setup: DrillSetup | None = None, observers: tuple[Any, ...] = ()) -> CaseResult:
    t0 = time.perf_counter()
    case = CaseResult(path, Path(path).stem)
    try:
        scenario = load_scenario(path)
        case.scenario, case.title = scenario.id, scenario.title
        runbook = load_runbook(scenario.runbook_path)
        case.drill = run_scenario(scenario, runbook, setup or DrillSetup(observers=observers))
        case.passed = case.drill.scorecard.passed
    except ValidationFailed as exc:
        case.error = first_errors(exc.diagnostics)
    except EngineError as exc:
        case.error = str(exc)
    case.seconds = time.perf_counter() - t0
    return case


def first_errors(diags: list[Diagnostic]) -> str:
    errors = [d for d in diags if d.is_error][:3]
    return "; ".join(f"{os.path.relpath(d.file)}:{d.line}:{d.column}: {d.message} [{d.rule}]" for d in errors)


def run_suite(files: list[str], *, seed: int | None = None, runs_dir: Path | None = None) -> SuiteResult:
    t0 = time.perf_counter()
    suite = SuiteResult()
    names = run_dir_names(files)
    for path in files:
        observers: tuple[Any, ...] = ()
        writer = None
        if runs_dir is not None:
            from engine.run.journal_writer import JournalWriter

            writer = JournalWriter(fresh(runs_dir / names[path]), fsync=False)
            observers = (writer,)
        try:
            suite.cases.append(run_case(path, DrillSetup(seed=seed, observers=observers)))
        finally:
            if writer is not None:
                writer.close()
    suite.seconds = time.perf_counter() - t0
    return suite


def run_dir_names(files: list[str]) -> dict[str, str]:
    """One journal directory per scenario file: its stem, numbered when two files share it."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for path in files:
        stem = name = Path(path).stem
        number = 1
        while name in taken:
            number += 1
            name = f"{stem}-{number}"
        taken.add(name)
        names[path] = name
    return names


def fresh(run_dir: Path) -> Path:
    """A test run replaces the journal of the previous one (the writer appends)."""
    import shutil

    (run_dir / "journal.jsonl").unlink(missing_ok=True)
    shutil.rmtree(run_dir / "logs", ignore_errors=True)
    return run_dir


def paint(text: str, code: str, color: bool) -> str:
    """Text in an ANSI colour when `color` is on."""
    return f"\033[{code}m{text}\033[0m" if color else text


def render_suite(suite: SuiteResult, *, color: bool = False) -> str:
    lines = []
    width = max((len(c.scenario) for c in suite.cases), default=10)
    for case in suite.cases:
        mark = paint("PASS", "32", color) if case.passed else paint("FAIL", "31", color)
        lines.append(f"{mark}  {case.scenario:<{width}}  {case.summary()}")
    total = f"{suite.passed} passed, {suite.failed} failed"
    lines.append(paint(total, "1;32" if not suite.failed else "1;31", color) +
                 f" ({len(suite.cases)} scenario(s) in {suite.seconds:.2f}s)")
    return "\n".join(lines) + "\n"


class JUnitCase(Protocol):
    file: str
    scenario: str
    seconds: float

    @property
    def passed(self) -> bool: ...

    def summary(self) -> str: ...

    def details(self) -> str | None: ...


class JUnitSuite(Protocol):
    seconds: float

    @property
    def cases(self) -> Sequence[JUnitCase]: ...

    @property
    def failed(self) -> int: ...


def junit(suite: JUnitSuite) -> str:
    """JUnit XML: one test case per scenario (a run, or N trials), failing with its summary."""
    from xml.etree import ElementTree as ET

    root = ET.Element("testsuites", tests=str(len(suite.cases)), failures=str(suite.failed))
    node = ET.SubElement(root, "testsuite", name="runbook test", tests=str(len(suite.cases)),
                         failures=str(suite.failed), errors="0", time=f"{suite.seconds:.3f}")
    for case in suite.cases:
        tc = ET.SubElement(node, "testcase", classname="runbook.scenario", name=case.scenario,
                           file=case.file, time=f"{case.seconds:.3f}")
        details = case.details()
        if not case.passed:
            failure = ET.SubElement(tc, "failure", message=case.summary()[:1000], type="objective")
            failure.text = details
        elif details is not None:
            ET.SubElement(tc, "system-out").text = details
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
