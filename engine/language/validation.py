"""Validation of files and directories: load -> schema -> model -> lint, all problems at once.

A file with schema errors is still linted: the invalid parts are cut from a copy of
its data until the rest validates (_pruning.py), so one run reports the typo *and* the
reference to a step that does not exist. Many files are split across processes (fork), since the
work is CPU-bound Python.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from engine.errors import EngineError, UsageError
from engine.templates.patterns import deferred

from . import cache, connections, includes, model_cache, schema
from .builder import build_runbook
from .diagnostics import Diagnostic, Report, Severity, caret_line, printable
from .loader import DEFAULT_LIMITS, Document, Limits, LoadError, decode, load_file, load_text, special_kind
from .model import Runbook

YAML_SUFFIXES = (".yaml", ".yml")
_SKIP_DIRS = {".git", ".hg", ".svn", ".runbook", ".venv", "venv", "node_modules", "__pycache__",
              ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}
# `ignore[RB109, RB104]` silences those rules, a bare `ignore` every rule, on its line. A
# near miss (`ignored`, `ignore-all`, an unclosed `ignore[RB109`) silences nothing.
_SUPPRESS = deferred(r"#\s*runbook:\s*ignore(?:\[(?P<rules>[A-Za-z0-9_,\s-]*)\]|(?![\w\[-]))")
_PARALLEL_MIN_FILES = 48


class Options(NamedTuple):
    strict: bool = False
    inventory_groups: frozenset[str] | None = None
    channels: Any = None  # channels.KnownChannels: the channels config runbooks are checked against
    jobs: int | None = None
    limits: Limits = DEFAULT_LIMITS
    cache: bool | None = None  # None: on unless RUNBOOK_NO_CACHE is set
    # False: lint rules that can only warn are not run (for callers that drop warnings, as a
    # run does: positioning a warning composes the file's whole node tree).
    warnings: bool = True


DEFAULT_OPTIONS = Options()


class ValidationFailed(EngineError):
    """A runbook or scenario has errors; carries every diagnostic."""

    exit_code = 2

    def __init__(self, file: str, diagnostics: Sequence[Diagnostic], text: str | None = None) -> None:
        diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)  # by position, as everywhere
        errors = [d for d in diagnostics if d.is_error]
        lines = text.splitlines() if text is not None else []
        first = "\n".join(_shown(d, lines if d.file == file else []) for d in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{file} is not valid ({len(errors)} error(s)):\n{first}{more}")
        self.file = file
        self.diagnostics = list(diagnostics)


def _shown(diag: Diagnostic, lines: list[str]) -> str:
    """One error of a file that cannot be used, with its source line and a caret when known."""
    head = f"  {diag.file}:{diag.line}:{diag.column}: {printable(diag.message)} [{diag.rule}]"
    if not 0 < diag.line <= len(lines) or len(lines[diag.line - 1]) > 200:
        return head
    line = lines[diag.line - 1]
    return f"{head}\n    {line}\n    {caret_line(line, diag.column)}"


class Found(NamedTuple):
    """Files to check, and what was skipped: (path, what it is) for FIFOs, sockets, devices."""

    files: list[str]
    skipped: list[tuple[str, str]]


def find(paths: Iterable[str | os.PathLike[str]]) -> Found:
    """YAML files named, or found recursively under named directories, in sorted order.

    Only regular files are checked: a FIFO named `x.yaml` would block the reader forever.
    """
    found = Found([], [])
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            _walk(path, found)
        elif os.path.isfile(path):
            found.files.append(path)
        elif (kind := _special(path)) is not None:
            found.skipped.append((path, kind))
        else:
            raise UsageError(f"no such file or directory: {path}")
    return Found(list(dict.fromkeys(found.files)), found.skipped)


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The regular YAML files named or found under `paths` (see `find`)."""
    return find(paths).files


def _walk(root: str, found: Found) -> None:
    with os.scandir(root) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    subdirs = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in _SKIP_DIRS:
                subdirs.append(entry.path)
        elif not entry.name.endswith(YAML_SUFFIXES):
            continue
        elif _is_file(entry):  # free for plain entries: scandir knows their type
            found.files.append(entry.path)
        elif (kind := _special(entry.path)) is not None:
            found.skipped.append((entry.path, kind))
        else:
            found.files.append(entry.path)  # a broken link: the check says it cannot be read
    for sub in subdirs:
        _walk(sub, found)


def _is_file(entry: os.DirEntry[str]) -> bool:
    """Whether an entry is a regular file (following links); a link that loops is not,
    and is then checked like a broken link: the file check says it cannot be read."""
    try:
        return entry.is_file()
    except OSError:
        return False


def _special(path: str) -> str | None:
    """'a FIFO', 'a socket', ... for an existing path that is neither a file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISDIR(mode) else special_kind(mode)


# -- one document -------------------------------------------------------------------------


class Checked:
    """The outcome for one file: its diagnostics and, if valid, its model."""

    def __init__(self, file: str, diagnostics: list[Diagnostic] | None = None, model: Any = None,
                 text: str | None = None) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = diagnostics if diagnostics is not None else []
        self.model, self.text = model, text
        self.deps: list[str] = []  # other files the check read (for the cache)


def check_document(doc: Document, options: Options = DEFAULT_OPTIONS) -> Checked:
    """Schema and lint problems of a loaded document; the model if it has no errors."""
    diags = list(doc.problems)
    schema_diags = schema.validate(doc)
    diags.extend(schema_diags)
    kind = doc.kind
    if kind == "serve" and not schema_diags:
        from .serve_rules import check_serve

        diags.extend(check_serve(doc, load_runbook))
    if kind not in schema.KINDS:
        return Checked(doc.file, _suppressed(doc, diags))
    lint_doc = doc if not schema_diags else _pruned(doc, kind)
    model = None
    if lint_doc is not None:
        model, lint_diags = _lint(lint_doc, kind, options)
        known = {(d.line, d.column, d.rule) for d in diags}
        diags.extend(d for d in lint_diags if (d.line, d.column, d.rule) not in known)
    diags = _suppressed(doc, diags)
    valid = not any(d.is_error for d in diags) and not schema_diags
    return Checked(doc.file, diags, model if valid else None)


def _pruned(doc: Document, kind: str) -> Document | None:
    from ._pruning import pruned  # only for a file with schema errors

    return pruned(doc, kind)


def _lint(doc: Document, kind: str, options: Options) -> tuple[Any, list[Diagnostic]]:
    from . import lint

    if kind == "runbook":
        runbook = connections.add_to(build_runbook(doc))
        return runbook, lint.lint_runbook(doc, runbook, inventory_groups=options.inventory_groups,
                                          channels=options.channels, warnings=options.warnings)
    if kind == "inventory":
        from ._inventory_rules import lint_inventory

        return lint_inventory(doc)
    from ._scenario_rules import lint_scenario
    from .scenario import build_scenario

    scenario = build_scenario(doc)
    cache.note(scenario.runbook_path)
    target = _scenario_runbook(scenario.runbook_path, options)
    return scenario, lint_scenario(doc, scenario, target.model, runbook_errors=target.errors,
                                   runbook_exists=target.exists, runbook_kind=target.wrong_kind)


def _scenario_runbook(path: Path, options: Options) -> includes.Referenced:
    """The runbook a scenario names, read once per process however many name it."""
    return includes.referenced(path, options.limits)


def _suppressed(doc: Document, diags: list[Diagnostic]) -> list[Diagnostic]:
    text = doc.source.text
    if "runbook:" not in text or not diags:
        return diags
    lines = text.splitlines()
    keep = []
    for d in diags:
        line = lines[d.line - 1] if 0 < d.line <= len(lines) else ""
        match = _SUPPRESS.search(line)
        if match is None:
            keep.append(d)
            continue
        rules = match.group("rules")
        if rules is not None and d.rule not in {r.strip().upper() for r in rules.split(",")}:
            keep.append(d)
    return keep


def check_file(path: str, options: Options = DEFAULT_OPTIONS, text: str | None = None) -> Checked:
    """Every problem of one file and, if it has no errors, its model; `text` is the file's
    text when the caller has read it already (the check is then of exactly that text)."""
    with cache.Recorder() as deps:
        try:
            doc = load_file(path, options.limits) if text is None else load_text(text, path, options.limits)
        except LoadError as exc:
            return Checked(path, [exc.diagnostic], text=exc.text if exc.text is not None else text)
        checked = check_document(doc, options)
    checked.deps = deps
    if checked.diagnostics:
        checked.text = doc.source.text
    return checked


# -- many files ---------------------------------------------------------------------------


def validate_paths(paths: Iterable[str | os.PathLike[str]], options: Options = DEFAULT_OPTIONS) -> Report:
    """Validate every runbook and scenario under `paths`; UsageError for missing paths."""
    files, skipped = find(paths)
    includes.forget()  # files may have changed since an earlier call in this process
    report = Report(files=files, diagnostics=[_skipped(path, kind) for path, kind in skipped])
    store = _open_cache(options, len(files))
    todo, contents = _cached(files, store, report) if store is not None else (files, {})
    for checked in _check_all(todo, options):
        report.diagnostics.extend(checked.diagnostics)
        if checked.text is not None:
            report.sources[checked.file] = checked.text
        if store is not None and checked.file in contents:
            store.store(checked.file, contents[checked.file], checked.diagnostics, checked.deps)
    if store is not None:
        store.save()
    return report


RULE_SKIPPED = "RB005"


def _skipped(path: str, kind: str) -> Diagnostic:
    return Diagnostic(path, 1, 1, Severity.WARNING, RULE_SKIPPED,
                      f"not a regular file ({kind}): skipped, never opened")


# Below this many files the cache costs more (hashing, loading it) than it saves.
_CACHE_MIN_FILES = 16


def _open_cache(options: Options, count: int) -> cache.ValidationCache | None:
    if count < _CACHE_MIN_FILES or not cache.enabled(options.cache):
        return None
    channels = (options.channels.file, sorted(options.channels.names)) if options.channels else None
    extra = [f"groups {sorted(options.inventory_groups or ())}", f"limits {options.limits}",
             f"includes {os.environ.get(includes.ENV, '')}", f"channels {channels}", _connections_key()]
    return cache.ValidationCache(cache.default_directory(), cache.salt(extra))


def _connections_key() -> str:
    """What the cached results depend on of the connections file in force (RB170 reads it)."""
    path = connections.config_path()
    try:
        return f"connections {path} {os.stat(path).st_mtime_ns if path else ''}"
    except OSError:
        return f"connections {path} (unreadable)"


def _cached(files: list[str], store: cache.ValidationCache, report: Report) -> tuple[list[str], dict[str, bytes]]:
    """Take unchanged files' results from the cache; return the files to check."""
    todo: list[str] = []
    contents: dict[str, bytes] = {}
    for file in files:
        try:
            with open(file, "rb") as handle:
                content = handle.read()
        except OSError:
            todo.append(file)  # the check reports it
            continue
        found = store.lookup(file, content)
        if found is None:
            todo.append(file)
            contents[file] = content
            continue
        report.diagnostics.extend(found)
        if found:
            report.sources[file] = content.decode("utf-8", errors="replace").removeprefix("\ufeff")
    return todo, contents


def _jobs(options: Options, count: int) -> int:
    if options.jobs is not None:
        return max(1, options.jobs)
    if count < _PARALLEL_MIN_FILES:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1), 8))


def _check_chunk(args: tuple[list[str], Options]) -> list[Checked]:
    files, options = args
    out = []
    for f in files:
        checked = check_file(f, options)
        checked.model = None  # models stay in the worker: only diagnostics travel back
        out.append(checked)
    return out


def _check_all(files: list[str], options: Options) -> list[Checked]:
    jobs = _jobs(options, len(files))
    if jobs <= 1 or len(files) < 2:
        return _check_chunk((files, options))
    import multiprocessing

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        return _check_chunk((files, options))
    _warm_up()
    chunks = [files[i::jobs] for i in range(jobs)]
    with context.Pool(jobs - 1) as pool:
        pending = pool.map_async(_check_chunk, [(c, options) for c in chunks[1:]])
        results = _check_chunk((chunks[0], options))
        for part in pending.get():
            results.extend(part)
    order = {f: i for i, f in enumerate(files)}
    return sorted(results, key=lambda c: order[c.file])


def _warm_up() -> None:
    # Compile schemas and build the template environment once, before fork, so
    # every worker inherits them instead of paying again.
    from engine.templates import templating

    for kind in schema.KINDS:
        schema.issues(kind, {})
    templating.analyze("{{ x }}")


def _kind_of(model: Any) -> str:
    if isinstance(model, Runbook):
        return "runbook"
    from .inventory import Inventory

    return "inventory" if isinstance(model, Inventory) else "scenario"


def load_runbook(path: str | os.PathLike[str], options: Options = DEFAULT_OPTIONS) -> Runbook:
    """Load, validate and build a runbook; ValidationFailed listing every error otherwise."""
    runbook: Runbook = _load_kind(path, "runbook", options)
    return runbook


def load_scenario(path: str | os.PathLike[str], options: Options = DEFAULT_OPTIONS) -> Any:
    """Load, validate and build a scenario (engine.language.scenario.Scenario)."""
    return _load_kind(path, "scenario", options)


def _load_kind(path: str | os.PathLike[str], kind: str, options: Options) -> Any:
    name = os.fspath(path)
    if not os.path.exists(name):
        raise UsageError(f"no such file: {name}")
    model = _model(name, options)
    found = _kind_of(model)
    if found != kind:
        raise UsageError(f"{name} is a {found}, not a {kind}")
    return model


def _model(name: str, options: Options) -> Any:
    """The model of a file that checks clean (kept from an earlier check if nothing it was
    built from changed since: model_cache.py); ValidationFailed listing every problem if not."""
    text, kept = _kept(name, options)
    model = kept.load() if kept is not None else None
    if model is not None:
        return model
    # Errors only: a file that has some is checked again whole, so the failure lists every
    # diagnostic, warnings too, as `runbook validate` would.
    checked = check_file(name, options._replace(warnings=False), text)
    if checked.model is None or any(d.is_error for d in checked.diagnostics):
        checked = check_file(name, options)
        raise ValidationFailed(name, checked.diagnostics, checked.text)
    if kept is not None:
        kept.store(checked.model, checked.deps)
    return checked.model


def _kept(name: str, options: Options) -> tuple[str | None, model_cache.Slot | None]:
    """The file's text and where its model is kept, when models are kept in this process."""
    if not model_cache.enabled() or options.channels is not None:
        return None, None
    content = model_cache.read(name, options.limits.max_bytes)
    if content is None:
        return None, None  # the check reports why
    try:
        text = decode(content, name)
    except LoadError:
        return None, None
    key = model_cache.options_key(options.strict, options.inventory_groups, options.limits)
    return text, model_cache.slot(name, content, key)
