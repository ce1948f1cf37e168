"""engine.language.loader: YAML -> plain data, a source map with 1-based positions, and hard limits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from support import FIXTURES, MINIMAL_RUNBOOK, shipped_documents

from engine.language.loader import DEFAULT_LIMITS, Document, Limits, LoadError, Position, load_file, load_text


def load_error(text: str, limits: Limits = DEFAULT_LIMITS) -> LoadError:
    with pytest.raises(LoadError) as caught:
        load_text(text, "doc.yaml", limits)
    return caught.value


def text_at(text: str, pos: Position, length: int) -> str:
    """The `length` characters of `text` starting at a 1-based position."""
    return text.splitlines()[pos.line - 1][pos.column - 1 : pos.column - 1 + length]


# -- plain data ------------------------------------------------------------------------------

ORDINARY = """\
kind: runbook
name: "quoted"
single: 'it''s'
count: 42
ratio: 2.5
hex: 0x1F
octal: 017
big: 1_000_000
none: ~
empty:
flag: true
words: [a, "b c", 3]
nested:
  list:
    - {x: 1, y: [1, 2, {z: null}]}
    - plain text
  folded: >
    one
    two
  literal: |
    line one
    line two
inf: .inf
negative: -3
"""


@pytest.mark.parametrize(
    "path",
    [FIXTURES / "valid-runbook.yaml", FIXTURES / "valid-scenario.yaml", *shipped_documents()],
    ids=lambda p: p.name,
)
def test_loaded_files_equal_yaml_safe_load(path: Path) -> None:
    """Shipped files too: the same data as PyYAML, except that timestamps stay strings."""
    assert load_file(path).data == yaml.load(path.read_text(encoding="utf-8"), Loader=TimestampsAsText)


class TimestampsAsText(yaml.SafeLoader):
    """PyYAML's safe loader with the one documented difference: timestamps stay strings."""


TimestampsAsText.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar)


def test_ordinary_scalars_and_collections_equal_yaml_safe_load() -> None:
    assert load_text(ORDINARY).data == yaml.safe_load(ORDINARY)


_keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20),
)
_json_like = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _json_like, max_size=6))
def test_dumped_data_loads_back_as_yaml_safe_load_reads_it(data: dict[str, object]) -> None:
    for style in (False, True, None):
        text = yaml.safe_dump(data, default_flow_style=style, allow_unicode=True)
        assert load_text(text).data == yaml.safe_load(text)


def test_on_and_yes_resolve_as_yaml_1_1_booleans() -> None:
    doc = load_text("on: yes\noff: no\nmaybe: y\n")
    assert doc.data == {True: True, False: False, "maybe": "y"}


def test_timestamps_stay_strings() -> None:
    doc = load_text("day: 2001-12-14\nmoment: 2001-12-14t21:59:43.10-05:00\n")
    assert doc.data == {"day": "2001-12-14", "moment": "2001-12-14t21:59:43.10-05:00"}


def test_merge_key_brings_in_keys_and_explicit_keys_win() -> None:
    doc = load_text(
        textwrap.dedent("""\
        base: &base {timeout: 5s, role: ops}
        step:
          <<: *base
          role: responder
        """)
    )
    assert doc.data["step"] == {"timeout": "5s", "role": "responder"}


def test_merge_of_a_list_of_mappings_takes_the_first_one_that_has_a_key() -> None:
    doc = load_text("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  w: 0\n")
    assert doc.data["c"] == {"x": 1, "y": 1, "z": 2, "w": 0}


def test_merge_of_a_scalar_is_rejected_with_its_position() -> None:
    diag = load_error("a: 1\nb:\n  <<: 5\n").diagnostic
    assert (diag.rule, diag.line, diag.column) == ("RB003", 3, 7)
    assert "merge" in diag.message


def test_utf8_bom_is_accepted_and_positions_ignore_it(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfkind: runbook\ntitle: T\n")
    doc = load_file(path)
    assert doc.data == {"kind": "runbook", "title": "T"}
    assert doc.source.position(("title",), key=True) == Position(2, 1)


def test_document_kind_is_the_kind_string_or_none() -> None:
    assert load_text("kind: runbook\n").kind == "runbook"
    assert load_text("kind: [runbook]\n").kind is None
    assert load_text("title: x\n").kind is None


# -- positions -------------------------------------------------------------------------------

POSITIONED = """\
kind: runbook
base: &b
  timeout: 5s
  role: ops
steps:
  - id: a
    <<: *b
    run: echo a
  - id: b
    role: local
"""


@pytest.fixture
def positioned() -> Document:
    return load_text(POSITIONED)


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("kind",), False, Position(1, 7)),
        (("kind",), True, Position(1, 1)),
        (("steps", 0, "run"), False, Position(8, 10)),
        (("steps", 0, "run"), True, Position(8, 5)),
        (("steps", 1), False, Position(9, 5)),
        (("steps", 1, "role"), True, Position(10, 5)),
        ((), False, Position(1, 1)),
    ],
)
def test_positions_of_values_and_keys_are_one_based(
    positioned: Document, path: tuple[str | int, ...], key: bool, expected: Position
) -> None:
    assert positioned.source.position(path, key=key) == expected


def test_merged_keys_are_positioned_where_the_anchor_defines_them(positioned: Document) -> None:
    assert positioned.source.position(("steps", 0, "timeout")) == Position(3, 12)
    assert positioned.source.position(("steps", 0, "timeout"), key=True) == Position(3, 3)


def test_explicit_key_beats_merged_key_in_positions(positioned: Document) -> None:
    assert positioned.source.position(("steps", 1, "role")) == Position(10, 11)
    assert positioned.source.position(("steps", 0, "role")) == Position(4, 9)


def test_missing_path_falls_back_to_the_deepest_existing_node(positioned: Document) -> None:
    assert positioned.source.position(("steps", 0, "nope")) == Position(6, 5)
    assert positioned.source.position(("nope", "deeper")) == Position(1, 1)


def test_diagnostic_from_document_carries_file_position_and_path(positioned: Document) -> None:
    diag = positioned.diagnostic(("steps", 0, "run"), "bad", "RB999", key=True)
    assert (diag.file, diag.line, diag.column, diag.rule, diag.path) == (
        "<string>", 8, 5, "RB999", ("steps", 0, "run"))


def test_position_with_many_keys_is_not_quadratic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Looking up thousands of keys in one mapping reads each key node once, not once per
    lookup (counted, not timed: a loaded machine makes a time limit flaky, and speed
    belongs to the benchmarks)."""
    from engine.language import source_map

    text = "".join(f"k{i}: {i}\n" for i in range(20_000))
    doc = load_text(text)
    reads = 0
    real_scalar = source_map.scalar

    def counting(node: object) -> object:
        nonlocal reads
        reads += 1
        return real_scalar(node)

    monkeypatch.setattr(source_map, "scalar", counting)
    positions = [doc.source.position((f"k{i}",)) for i in range(0, 20_000, 4)]
    assert positions[-1] == Position(19_997, 9)
    assert reads <= 20_000  # each key read once, however many lookups


SCALARS = """\
plain: echo {{ a }} done
double: "echo {{ b }} done"
single: 'it''s {{ c }}'
escaped: "tab\\there {{ d }}"
literal: |
  first line
    indented {{ e }}
folded: >
  first words
  then {{ f }}
multiline_plain: first
  second {{ g }}
multiline_double: "first
  second {{ h }}"
kept: |+
  keep {{ i }}

after: x
"""


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("plain", "{{ a }}"),
        ("double", "{{ b }}"),
        ("single", "{{ c }}"),
        ("escaped", "{{ d }}"),
        ("literal", "{{ e }}"),
        ("folded", "{{ f }}"),
        ("multiline_plain", "{{ g }}"),
        ("multiline_double", "{{ h }}"),
        ("kept", "{{ i }}"),
    ],
)
def test_inside_scalar_points_at_the_same_text_in_the_file(key: str, needle: str) -> None:
    """A (line, column) inside a string value maps to where that text is in the file."""
    doc = load_text(SCALARS)
    value = doc.data[key]
    index = value.index(needle)
    line = value.count("\n", 0, index) + 1
    column = index - (value.rfind("\n", 0, index) + 1) + 1
    pos = doc.source.inside_scalar((key,), line, column)
    assert text_at(SCALARS, pos, len(needle)) == needle


def test_inside_scalar_of_a_non_string_falls_back_to_its_position(positioned: Document) -> None:
    assert positioned.source.inside_scalar(("steps", 0), 1, 3) == Position(6, 5)


# -- duplicate keys --------------------------------------------------------------------------


def test_duplicate_key_is_reported_at_the_second_key_and_loading_continues() -> None:
    doc = load_text("kind: runbook\ntitle: one\nsteps:\n  - {id: a, id: b}\ntitle: two\nlast: 1\n")
    assert doc.data == {"kind": "runbook", "title": "two", "steps": [{"id": "b"}], "last": 1}
    found = sorted((d.rule, d.line, d.column) for d in doc.problems)
    assert found == [("RB004", 4, 13), ("RB004", 5, 1)]
    assert all("duplicate key" in d.message for d in doc.problems)


def test_value_of_a_duplicated_key_is_positioned_at_the_value_that_is_kept() -> None:
    doc = load_text("title: one\ntitle: two\n")
    assert doc.source.position(("title",)) == Position(2, 8)


def test_explicit_key_over_a_merged_key_is_not_a_duplicate() -> None:
    doc = load_text("a: &a {x: 1}\nb:\n  <<: *a\n  x: 2\n")
    assert doc.problems == ()


# -- limits and hostile input ----------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_is_rejected_quickly() -> None:
    started = time.perf_counter()
    diag = load_error(BILLION_LAUGHS).diagnostic
    # Expanding it would build 387 million items (minutes and gigabytes); refusing it is
    # immediate. The bound only tells those apart, loose enough for a loaded machine.
    assert time.perf_counter() - started < 10
    assert diag.rule == "RB002"
    assert "alias" in diag.message


def test_sharing_defaults_through_aliases_a_few_dozen_times_is_fine() -> None:
    steps = "".join(f"  - {{id: s{i}, <<: *d}}\n" for i in range(40))
    doc = load_text(f"defaults: &d {{timeout: 5s, env: {{A: '1', B: '2'}}}}\nsteps:\n{steps}")
    assert len(doc.data["steps"]) == 40
    assert doc.data["steps"][39]["env"] == {"A": "1", "B": "2"}


@pytest.mark.parametrize("text", ["a: &x [*x]\n", "a: &x {b: *x}\n"])
def test_recursive_alias_is_rejected(text: str) -> None:
    diag = load_error(text).diagnostic
    assert diag.rule == "RB002"
    assert "recursive" in diag.message
    assert (diag.line, diag.column) == (1, 4)


DEEP_SCRIPT = """
import sys
from engine.language.loader import LoadError, load_text
try:
    load_text(sys.argv[1] * 100_000)
except LoadError as exc:
    d = exc.diagnostic
    print(d.rule, d.line, d.column, d.message, sep="|")
"""


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_rejected_without_crashing_the_interpreter(opener: str) -> None:
    """100,000 levels would overflow libyaml's C stack: rejected cleanly and positioned, no crash.

    Whichever refuses first wins: our depth limit (RB002) or, in newer PyYAML releases,
    libyaml's own nesting limit reported as a syntax error (RB001)."""
    done = subprocess.run([sys.executable, "-c", DEEP_SCRIPT, opener], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rule, line, column, message = done.stdout.strip().split("|")
    assert rule in ("RB001", "RB002"), done.stdout
    assert (int(line), int(column)) >= (1, 1)
    assert ("nesting" in message and "depth" in message) or "deeper than 64 levels" in message, message


def test_nesting_past_the_depth_limit_is_rejected_with_its_position() -> None:
    text = "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 5)) + "  " * 5 + "v: 1\n"
    diag = load_error(text, Limits(max_depth=3)).diagnostic
    assert (diag.rule, diag.line) == ("RB002", 4)
    assert "deeper than 3" in diag.message


def test_file_over_the_size_limit_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("kind: runbook\n" + "# padding\n" * 20, encoding="utf-8")
    with pytest.raises(LoadError) as caught:
        load_file(path, Limits(max_bytes=100))
    assert caught.value.diagnostic.rule == "RB002"
    assert "100 byte limit" in caught.value.diagnostic.message
    assert load_file(path, Limits(max_bytes=path.stat().st_size)).data == {"kind": "runbook"}


def test_text_over_the_size_limit_is_rejected() -> None:
    assert load_error("a: 12345\n", Limits(max_bytes=4)).diagnostic.rule == "RB002"


# -- bytes and encodings ---------------------------------------------------------------------


def test_non_utf8_bytes_are_reported_at_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: runbook\ntitle: caf\xe9 au lait\n")
    with pytest.raises(LoadError) as caught:
        load_file(path)
    diag = caught.value.diagnostic
    assert (diag.rule, diag.line, diag.column) == ("RB001", 2, 11)
    assert "0xe9" in diag.message and "UTF-8" in diag.message


def test_bad_byte_column_counts_characters_not_bytes(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_bytes("title: é€".encode() + b"\xff\n")
    with pytest.raises(LoadError) as caught:
        load_file(path)
    assert (caught.value.diagnostic.line, caught.value.diagnostic.column) == (1, 10)


def test_unreadable_path_is_an_io_problem(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as caught:
        load_file(tmp_path / "missing.yaml")
    assert caught.value.diagnostic.rule == "RB000"
    with pytest.raises(LoadError) as caught:
        load_file(tmp_path)  # a directory where a file is expected
    assert caught.value.diagnostic.rule == "RB000"


@pytest.mark.parametrize("char", ["\x0c", "\x00", "\x1b"])
def test_control_characters_are_reported_at_their_position(char: str) -> None:
    diag = load_error(f"kind: runbook\ntitle: a{char}b\n").diagnostic
    assert (diag.rule, diag.line, diag.column) == ("RB001", 2, 9)


def test_control_character_in_a_large_document_is_reported_not_raised() -> None:
    """Large documents get a nesting pre-scan; it must report reader errors too."""
    text = "kind: runbook\nlist: [" + ", ".join(["-1"] * 3000) + "]\ntitle: a\x0cb\n"
    diag = load_error(text).diagnostic
    assert (diag.rule, diag.line, diag.column) == ("RB001", 3, 9)


# -- document shape --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n"])
def test_empty_or_comment_only_file_is_a_shape_problem(text: str) -> None:
    diag = load_error(text).diagnostic
    assert diag.rule == "RB003"
    assert "empty" in diag.message


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("42\n", "integer"), ("just text\n", "string"), ("null\n", "null")],
)
def test_top_level_must_be_a_mapping(text: str, found: str) -> None:
    diag = load_error(text).diagnostic
    assert diag.rule == "RB003"
    assert "expected a mapping at the top level" in diag.message
    assert found in diag.message


def test_multiple_documents_are_rejected_at_the_second_one() -> None:
    diag = load_error("kind: runbook\n---\nkind: scenario\n").diagnostic
    assert (diag.rule, diag.line) == ("RB001", 2)
    assert "more than one YAML document" in diag.message


def test_explicit_document_markers_around_one_document_are_fine() -> None:
    assert load_text("---\nkind: runbook\n...\n").data == {"kind": "runbook"}


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("kind: runbook\nsecret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n", 2, 9),
        ("kind: runbook\nobj: !!python/object:os.system {}\n", 2, 6),
        ("kind: runbook\ndata: !!binary aGVsbG8=\n", 2, 7),
        ("kind: runbook\nitems: !!set {a, b}\n", 2, 8),
        ("kind: runbook\nlist: !custom [1]\n", 2, 7),
    ],
)
def test_unsupported_tags_are_rejected_at_the_tagged_node(text: str, line: int, column: int) -> None:
    diag = load_error(text).diagnostic
    assert (diag.rule, diag.line, diag.column) == ("RB003", line, column)
    assert "unsupported YAML tag" in diag.message


def test_standard_scalar_tags_are_honoured() -> None:
    assert load_text("a: !!str 123\nb: !!int '7'\n").data == {"a": "123", "b": 7}


def test_complex_keys_are_rejected() -> None:
    diag = load_error("? [a, b]\n: 1\n").diagnostic
    assert (diag.rule, diag.line, diag.column) == ("RB003", 1, 3)


@pytest.mark.parametrize("number", ["0x_", "0b_", "-0x_", "1" * 5000])
def test_numbers_python_cannot_convert_are_reported_not_raised(number: str) -> None:
    diag = load_error(f"kind: runbook\ncount: {number}\n").diagnostic
    assert (diag.rule, diag.line, diag.column) == ("RB001", 2, 8)


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("kind: runbook\ntitle: a\n  nested: b\n", 3, 9),
        ("kind: runbook\nlist: [1, 2\ntitle: x\n", 2, 7),  # the bracket never closed
        ("kind: runbook\ntitle: 'unterminated\n", 2, 8),  # the quote never closed
        ("kind: runbook\n\tindented: tab\n", 2, 1),
        ("kind: runbook\nref: *nowhere\n", 2, 6),
    ],
)
def test_yaml_syntax_errors_are_positioned(text: str, line: int, column: int) -> None:
    diag = load_error(text).diagnostic
    assert (diag.rule, diag.line, diag.column) == ("RB001", line, column)
    assert diag.message.startswith("YAML syntax error")


def test_minimal_runbook_loads_without_problems() -> None:
    doc = load_text(MINIMAL_RUNBOOK, "minimal.yaml")
    assert doc.problems == ()
    assert doc.file == "minimal.yaml"
    assert doc.kind == "runbook"


@pytest.mark.parametrize("text", ["flag: !!bool maybe\n", "ratio: !!float abc\n", "n: !!int x1\n"])
def test_explicit_tag_that_does_not_fit_its_value_is_reported(text: str) -> None:
    diag = load_error(text).diagnostic
    assert (diag.rule, diag.line) == ("RB001", 1)
    assert "is not a valid" in diag.message


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_positions_of_reported_problems_follow_any_line_ending(newline: str, tmp_path: Path) -> None:
    control = load_error(newline.join(["kind: runbook", "title: a\x0cb", ""])).diagnostic
    path = tmp_path / "bad.yaml"
    path.write_bytes(newline.join(["kind: runbook", "title: caf\xe9", ""]).encode("latin-1"))
    with pytest.raises(LoadError) as caught:
        load_file(path)
    assert (control.line, control.column) == (2, 9)
    assert (caught.value.diagnostic.line, caught.value.diagnostic.column) == (2, 11)


def test_inside_scalar_counts_lines_as_yaml_does() -> None:
    text = "kind: runbook\rrun: >\r  first\r  then {{ x }}\r"
    pos = load_text(text).source.inside_scalar(("run",), 1, 12)
    assert pos == Position(4, 8)


def test_a_large_string_repeated_through_aliases_is_rejected_by_size() -> None:
    """E11: the alias limit counted collection nodes only, so a 100 kB string repeated
    3,000 times (a 112 kB file, 300 MB of data once anything copies it) loaded."""
    refs = ", ".join(["*big"] * 3000)
    diag = load_error(f"kind: runbook\nbig: &big {'x' * 100_000}\nlist: [{refs}]\n").diagnostic
    assert diag.rule == "RB002"
    assert "aliases expand this document" in diag.message
    assert (diag.line, diag.column) == (2, 6)  # the anchor whose value the aliases repeat


def test_aliases_may_repeat_values_within_ten_times_the_document() -> None:
    refs = ", ".join(["*v"] * 8)
    doc = load_text(f"v: &v {'y' * 200_000}\nlist: [{refs}]\n")
    assert len(doc.data["list"]) == 8


def test_a_large_document_without_aliases_is_within_the_size_budget() -> None:
    lines = "".join(f"k{i}: {'z' * 90}\n" for i in range(10_000))  # about 1 MB, no aliases
    assert len(load_text(lines, limits=Limits(max_expansion=1, min_expansion=0)).data) == 10_000


@pytest.mark.parametrize(("make", "kind"), [(os.mkfifo, "a FIFO"), (os.mkdir, "a directory")])
def test_only_a_regular_file_is_read(tmp_path: Path, make: Callable[[Path], None], kind: str) -> None:
    """E13: opening a FIFO blocks until a writer comes; it is refused before a byte is read."""
    path = tmp_path / "x.yaml"
    make(path)
    # Should the reader block after all, a writer comes after a while: the test then fails
    # on the assertion instead of hanging the suite.
    rescue = threading.Timer(10, lambda: os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK)))
    rescue.start()
    try:
        with pytest.raises(LoadError) as caught:
            load_file(path)
    finally:
        rescue.cancel()
    assert caught.value.diagnostic.rule == "RB000"
    assert f"not a regular file ({kind})" in caught.value.diagnostic.message


# -- the fast path: data from libyaml's events, the node tree only when asked --------------


def _exact(text: str) -> object:
    """The data as the node-based load builds it (the path every problem is reported by)."""
    from engine.language._yaml_nodes import Builder, FastLoader

    loader = FastLoader(text)
    try:
        return Builder(DEFAULT_LIMITS, len(text)).build(loader.get_single_node())
    finally:
        loader.dispose()


def _typed(value: object) -> str:
    # repr tells True from 1 and 1.0 from 1, and shows the order of keys.
    return repr(value)


FAST_CASES = [ORDINARY, "a: 1:30\nb: 0o17\nc: -.inf\nd: .NaN\ne: ''\nf: ' x '\ng: '~'\n",
              "x: [yes, No, OFF, y, n, null, Null, NULL, 0b101, +12, 1e3, 3.]\n",
              "day: 2001-12-14\nkey with spaces: {1: one, 2.5: half, false: no, ~: nothing}\n",
              'q: "tab\\there \\u00e9"\nfolded: >-\n  a\n  b\n\n  c\nkept: |+\n  x\n\n',
              "a: &x yes\nb: *x\nc: &l [1, {d: *x}]\ne: [*l, *l]\nf: &m {g: *l}\nh: *m\n"]


@pytest.mark.parametrize("text", FAST_CASES)
def test_the_fast_path_builds_the_same_data_as_the_node_tree(text: str) -> None:
    from engine.language._yaml_events import UNUSUAL, quick_data

    fast = quick_data(text, DEFAULT_LIMITS)
    assert fast is not UNUSUAL
    assert _typed(fast) == _typed(_exact(text))


@pytest.mark.parametrize("path", [FIXTURES / "valid-runbook.yaml", *shipped_documents()], ids=lambda p: p.name)
def test_shipped_files_take_the_fast_path_with_the_same_data(path: Path) -> None:
    from engine.language._yaml_events import UNUSUAL, quick_data

    text = path.read_text(encoding="utf-8")
    fast = quick_data(text, DEFAULT_LIMITS)
    assert fast is not UNUSUAL
    assert _typed(fast) == _typed(_exact(text))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _json_like, max_size=6))
def test_the_fast_path_agrees_with_the_node_tree_on_dumped_data(data: dict[str, object]) -> None:
    from engine.language._yaml_events import UNUSUAL, quick_data

    for style in (False, True, None):
        text = yaml.safe_dump(data, default_flow_style=style, allow_unicode=True)
        fast = quick_data(text, DEFAULT_LIMITS)
        assert fast is not UNUSUAL
        assert _typed(fast) == _typed(_exact(text))


@pytest.mark.parametrize("text", [
    "a: !!str 1\n", "base: &b {x: 1}\nc:\n  <<: *b\n", "a: 1\na: 2\n", "a: &x [1, *x]\n",
    "a: &x 1\nb: &x 2\nc: *x\n", "a: *nowhere\n", "&k a: 1\n",
    "? [a]\n: 1\n", "a: [1\n", "a: 1\n---\nb: 2\n", "# nothing\n", "a: 0x_\n",
])
def test_anything_unusual_is_left_to_the_exact_path(text: str) -> None:
    from engine.language._yaml_events import UNUSUAL, quick_data

    assert quick_data(text, DEFAULT_LIMITS) is UNUSUAL


def test_nesting_at_the_limit_is_left_to_the_exact_path() -> None:
    from engine.language._yaml_events import UNUSUAL, quick_data

    text = "a: " + "[" * 70 + "]" * 70 + "\n"
    assert quick_data(text, Limits(max_depth=64)) is UNUSUAL
    assert load_error(text).diagnostic.message == "nesting deeper than 64 levels"


def test_a_clean_file_is_loaded_without_composing_its_node_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Positions are composed on the first question, once: a clean file never pays for them."""
    from engine.language import loader

    composed = []
    real = loader._compose

    def counting(text: str, file: str) -> object:
        composed.append(file)
        return real(text, file)

    monkeypatch.setattr(loader, "_compose", counting)
    doc = load_text("kind: runbook\nsteps:\n  - id: a\n    run: df\n", "clean.yaml")
    assert composed == []
    assert doc.source.position(("steps", 0, "run")) == Position(4, 10)
    assert doc.source.position(("steps", 0, "id")) == Position(3, 9)
    assert composed == ["clean.yaml"]
