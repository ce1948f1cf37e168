"""PyYAML's pure-Python reader pattern is compiled only when used (engine/language/_yaml_start.py):
start-up of `runbook validate FILE` and `runbook run` no longer pays for it, and nothing
else changes."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from engine.language._yaml_start import READER_PATTERN, DeferredPattern

_FRESH = """\
import engine.language.loader, yaml
pattern = yaml.reader.Reader.NON_PRINTABLE
print(type(pattern).__name__, pattern._compiled is None)
try:
    yaml.load("ok: 'a\\x07b'", Loader=yaml.SafeLoader)  # the pure-Python reader checks characters
except yaml.reader.ReaderError as exc:
    print(str(exc).splitlines()[0])
print(type(pattern._compiled).__name__)
"""


def test_engine_start_up_leaves_the_reader_pattern_uncompiled_until_it_is_used() -> None:
    done = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        "DeferredPattern True",
        "unacceptable character #x0007: special characters are not allowed",
        "Pattern",
    ]


def test_pyyaml_compiles_exactly_the_pattern_deferred() -> None:
    """A PyYAML whose reader's pattern changed would no longer find the stand-in."""
    import yaml.reader

    assert yaml.reader.Reader.NON_PRINTABLE.pattern == READER_PATTERN


@pytest.mark.parametrize("text", ["plain", "tab\there", "bell\x07", "\ufffe", "\U0001f600 ok", "\x85\xa0", "\ud800"])
def test_the_deferred_pattern_finds_what_the_real_one_finds(text: str) -> None:
    real = re.compile(READER_PATTERN, re.UNICODE)
    found, expected = DeferredPattern(READER_PATTERN).search(text), real.search(text)
    assert (found and found.span()) == (expected and expected.span())
