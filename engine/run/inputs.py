"""Runbook inputs: from flags, an inputs file, an alert, the environment, a file or a
command (where teams keep secrets: engine.executors.secrets), or defaults.

Every problem (missing, mistyped, out of range, unknown) is reported at once, before
anything runs.
"""

# Annotations are evaluated (no `from __future__ import annotations`): `dataclass` checks
# each one given as text against patterns (ClassVar, InitVar) at every start.
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InputError
from engine.language.model import Input, Runbook

_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


@dataclass
class ResolvedInputs:
    """A run's input values, where each came from, and which of them are secret."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)


def parse_assignments(pairs: tuple[str, ...] | list[str], flag: str = "-i") -> dict[str, str]:
    """`key=value` strings -> dict; InputError naming the flag for a malformed one."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{flag} expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def convert(spec: Input, value: Any) -> Any:
    """Convert to the input's type; ValueError with a readable reason otherwise."""
    kind = spec.type
    if kind == "string":
        if isinstance(value, (dict, list)):
            raise ValueError("expected text, got a structure")
        return value if isinstance(value, str) else _text(value)
    if kind == "integer":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            return int(value.strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected an integer, got {value!r}") from None
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
    if kind == "boolean":
        return _boolean(value)
    return _structure(kind, value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _structure(kind: str, value: Any) -> Any:
    want = list if kind == "list" else dict
    if isinstance(value, str):
        text = value.strip()
        if kind == "list" and not text.startswith("["):
            return [part.strip() for part in text.split(",") if part.strip()]
        from engine.language.datafile import parse_value
        from engine.language.loader import LoadError

        try:
            value = parse_value(text)  # within the loader's limits, as files are
        except LoadError as exc:
            raise ValueError(f"expected a {kind} (JSON or YAML): {exc.diagnostic.message}") from None
    if not isinstance(value, want):
        raise ValueError(f"expected a {kind}, got {type(value).__name__}")
    return value


def check_constraints(spec: Input, value: Any) -> str | None:
    return spec.violation(value)


def resolve(
    runbook: Runbook,
    *,
    given: Mapping[str, Any] | None = None,
    from_file: Mapping[str, Any] | None = None,
    alert: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    read_sources: bool = True,
) -> ResolvedInputs:
    """Values for every input, by priority: -i, inputs file, alert, env:, file: or
    command:, default. Without `read_sources` (a dry-run, a drill) no file is read and no
    command runs: an input that would come from one (or a required one from an unset env:)
    stands in as `<where it comes from>`, unconverted."""
    environ = os.environ if environ is None else environ
    given, from_file = dict(given or {}), dict(from_file or {})
    problems = [_unknown(name, runbook) for name in [*given, *from_file] if name not in runbook.inputs]
    out = ResolvedInputs()
    base = os.path.dirname(os.path.abspath(runbook.file)) if runbook.file else None
    for name, spec in runbook.inputs.items():
        found = _find(spec, given, from_file, alert, environ) or _from_source(spec, base, environ, read_sources)
        if isinstance(found, str):  # its file or command failed
            problems.append(f"input '{name}': {found}")
            continue
        if found is None:
            if spec.required:
                problems.append(_missing(spec))
            else:
                out.values[name], out.sources[name] = spec.default, "default"
            continue
        problem = _accept(spec, *found, out)
        if problem:
            problems.append(problem)
    if problems:
        raise InputError.cannot_start(problems)
    out.secrets = [str(out.values[n]) for n, s in runbook.inputs.items() if s.secret and n in out.values]
    return out


class _StandIn(str):
    """The value of an input whose source a dry-run or drill does not read."""


def _accept(spec: Input, raw: Any, source: str, out: ResolvedInputs) -> str | None:
    """Convert and check one value: None when it is stored in `out`, else the problem."""
    if isinstance(raw, _StandIn):
        out.values[spec.name], out.sources[spec.name] = str(raw), source
        return None
    try:
        value = convert(spec, raw)
    except ValueError as exc:
        return _hide(spec, raw, f"input '{spec.name}' (from {source}): {exc}")
    reason = check_constraints(spec, value)
    if reason:
        return _hide(spec, raw, f"input '{spec.name}' (from {source}) {reason}")
    out.values[spec.name], out.sources[spec.name] = value, source
    return None


def _hide(spec: Input, raw: Any, problem: str) -> str:
    """A problem with a secret input must not print the secret."""
    if not spec.secret:
        return problem
    from .masking import Masker

    return Masker([str(raw)]).text(problem)


def _find(spec: Input, given: dict[str, Any], from_file: dict[str, Any],
          alert: Mapping[str, Any] | None, environ: Mapping[str, str]) -> tuple[Any, str] | None:
    if spec.name in given:
        return given[spec.name], "-i"
    if spec.name in from_file:
        return from_file[spec.name], "the inputs file"
    if alert is not None and spec.alert:
        from .alerts import lookup  # a run started by an alert has imported it already

        value = lookup(alert, spec.alert)
        if value is not None:
            return value, f"the alert ({spec.alert})"
    if spec.env and spec.env in environ:
        return environ[spec.env], f"${spec.env}"
    return None


def _from_source(spec: Input, base: str | None, environ: Mapping[str, str],
                 read: bool) -> tuple[Any, str] | str | None:
    """The value from the input's file or command; the problem (text) when that source fails."""
    kind, where = ("file", spec.file) if spec.file is not None else ("command", spec.command)
    if where is None:
        # an unset env: stands in only where the input would be missing: with a default, a
        # live run takes the default, and so does the plan
        return (_StandIn(f"<${spec.env}>"), f"${spec.env} (not read)") if not read and spec.env and spec.required \
            else None
    # Imported only for an input read from a file or a command (most runbooks have none).
    from engine.executors.secrets import SecretError, SecretSource, read_secret

    source = SecretSource(kind, where, base if kind == "file" else None)
    if not read:
        return _StandIn(f"<{source.describe()}>"), f"{source.describe()} (not read)"
    try:
        return read_secret(source, environ), source.describe()
    except SecretError as exc:
        return str(exc)


def _missing(spec: Input) -> str:
    ways = [f"-i {spec.name}=VALUE"]
    if spec.env:
        ways.append(f"${spec.env}")
    if spec.alert:
        ways.append(f"--alert (from {spec.alert})")
    about = f" ({spec.description})" if spec.description else ""
    return f"missing input '{spec.name}'{about}: pass {' or '.join(ways)}"


def _unknown(name: str, runbook: Runbook) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(runbook.inputs), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"the runbook has no input '{name}'{hint}"


def load_inputs_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Input values from a JSON or YAML mapping, read under the runbook loader's limits."""
    from engine.language.datafile import load_mapping

    return load_mapping(path, "inputs file", empty_ok=True)
