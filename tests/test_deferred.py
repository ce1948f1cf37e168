"""The standard-library modules the `runbook` command defers (engine/cli/_deferred.py): a
plain run never loads them, and whoever uses one gets exactly the module, once, even from
several threads at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import loaded_modules_script, probe_one_step_run

# What dataclasses, pathlib and urllib.parse import for functions a plain run never calls.
_DEFERRED = ("inspect", "ast", "dis", "tokenize", "linecache", "copy", "ntpath", "fnmatch", "ipaddress",
             "urllib.parse")
_LOADED = loaded_modules_script(_DEFERRED)


def _python(script: str) -> str:
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_a_plain_run_loads_none_of_what_dataclasses_and_pathlib_import_for_functions_it_never_calls(
        tmp_path: Path) -> None:
    """inspect (with ast, dis, tokenize, linecache), copy, ntpath, fnmatch, urllib.parse
    and ipaddress: a seventh of a one-step run's start-up, for code it never ran."""
    probe_one_step_run(_LOADED, tmp_path)  # the first run keeps the model; the second reads it
    assert probe_one_step_run(_LOADED, tmp_path) == "[]"



def test_a_plain_run_loads_neither_the_queue_of_parallel_items_nor_shlex(tmp_path: Path) -> None:
    """queue (a block's items that run at once) and shlex (a template value quoted): 3.4M
    instructions of a one-step run's start-up, for what it never did."""
    script = loaded_modules_script((*_DEFERRED, "queue", "shlex"))
    probe_one_step_run(script, tmp_path)
    assert probe_one_step_run(script, tmp_path) == "[]"


def test_a_plain_run_loads_no_heap_of_timers(tmp_path: Path) -> None:
    """heapq orders the timers of an incident's updates and a drill's clock (0.5M
    instructions of a one-step run's start-up, which has neither)."""
    script = loaded_modules_script((*_DEFERRED, "heapq"))
    probe_one_step_run(script, tmp_path)
    assert probe_one_step_run(script, tmp_path) == "[]"

def test_a_deferred_module_is_the_module_itself_from_its_first_use() -> None:
    script = """\
import sys, types
from engine.cli._deferred import defer
defer({"inspect": (), "ntpath": ()})
import inspect, ntpath
first = inspect
before = type(inspect).__name__, "signature" in vars(inspect)
from inspect import signature
after = (type(inspect) is types.ModuleType, sys.modules["inspect"] is first, str(signature(lambda a, b=1: a)),
         inspect.__loader__.__class__.__name__, ntpath.join("a", "b"), ntpath.__name__)
try:
    inspect.no_such_name
except AttributeError as exc:
    missing = str(exc)
print(before, after, missing)
"""
    assert _python(script) == (
        "('_Deferred', False) (True, True, '(a, b=1)', 'SourceFileLoader', 'a\\\\b', 'ntpath') "
        "module 'inspect' has no attribute 'no_such_name'")


def test_threads_that_first_use_a_deferred_module_together_each_get_the_whole_module() -> None:
    script = """\
import threading
from engine.cli._deferred import defer
defer({"ipaddress": ()})
import ipaddress
barrier, got = threading.Barrier(8), []

def use():
    barrier.wait()
    got.append(str(ipaddress.ip_address("::1")))

threads = [threading.Thread(target=use) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(got)
"""
    assert _python(script) == str(["::1"] * 8)


def test_a_module_imported_already_is_left_as_it_is() -> None:
    script = """\
import sys, inspect
from engine.cli._deferred import defer
before = sys.modules["inspect"]
defer({"inspect": ()})
print(sys.modules["inspect"] is before, type(before).__name__)
"""
    assert _python(script) == "True module"



def test_a_function_taken_from_a_deferred_module_at_import_stands_in_until_its_first_call() -> None:
    script = """\
import sys
from engine.cli._deferred import defer
defer({"urllib.parse": ("quote_from_bytes",)})
from urllib.parse import quote_from_bytes
import urllib.parse
module = sys.modules["urllib.parse"]
before = type(module).__name__, urllib.parse is module
quoted = quote_from_bytes(b"a b/c")
print(before, quoted, type(module).__name__, module.quote_from_bytes is not quote_from_bytes,
      module.urlsplit("http://h:8/p").port, quote_from_bytes.__name__)
"""
    assert _python(script) == "('_Deferred', True) a%20b/c module True 8 quote_from_bytes"


def test_json_compiles_exactly_the_patterns_deferred() -> None:
    """A json whose fallback patterns changed would no longer find the stand-ins."""
    import json.encoder
    import json.scanner
    import re

    from engine.cli._deferred import PATTERNS

    compiled = [json.scanner.NUMBER_RE, json.encoder.ESCAPE, json.encoder.ESCAPE_ASCII]
    assert [(p.pattern, p.flags) for p in compiled] == [(s, re.compile(s, f).flags) for s, f in PATTERNS]


def test_jsons_fallback_patterns_stand_in_until_used_and_then_find_what_the_real_ones_find() -> None:
    script = """\
from engine.cli._deferred import defer
defer({})
import json, json.decoder, json.encoder, json.scanner
word = 'a"b' + chr(10) + chr(233)
text = json.dumps({"a": [1, 2.5e3, word]})
untouched = [type(p).__name__ for p in (json.scanner.NUMBER_RE, json.encoder.ESCAPE, json.encoder.ESCAPE_ASCII)]
scan = json.scanner.py_make_scanner(json.decoder.JSONDecoder())
same = (scan("-12.5e3", 0) == (-12500.0, 7),
        json.encoder.py_encode_basestring(word) == json.encoder.c_encode_basestring(word),
        json.encoder.py_encode_basestring_ascii(word) == json.encoder.c_encode_basestring_ascii(word))
print(json.loads(text)["a"][2] == word, untouched, same)
"""
    assert _python(script) == "True ['_Pattern', '_Pattern', '_Pattern'] (True, True, True)"
