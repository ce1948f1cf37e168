"""The parsing helpers (bytes, human_bytes, seconds, to_datetime, now(), days_until,
parse_table, from_yaml, json_query): what each reads, that the quick tier and Jinja give
the same answer, that they obey the render bounds, and that a dry-run's placeholder
passes through them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from engine.errors import TemplateError
from engine.templates import templating
from engine.templates.dates import RunNow

JAN_1_2026 = 1_767_225_600.0  # the virtual clock's start

DF = """\
Filesystem      Size  Used Avail Use% Mounted on
udev            3.9G     0  3.9G   0% /dev
tmpfs           795M  1.6M  793M   1% /run
/dev/sda1        20G  7.5G   12G  40% /
"""
KUBECTL = """\
NAME                     READY   STATUS    RESTARTS      AGE
web-7d4b9c8c5d-abcde     1/1     Running   3 (2d ago)    3d
web-7d4b9c8c5d-fghij     0/1     Pending   0             41m
"""
ETCD = """\
+------------------------+------------------+---------+---------+-----------+------------+
|        ENDPOINT        |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER |
+------------------------+------------------+---------+---------+-----------+------------+
| https://10.0.0.1:2379  | 8e9e05c52164694d |  3.5.9  |  25 kB  |      true |      false |
| https://10.0.0.2:2379  | 91bc3c398fb3c146 |  3.5.9  |  2.1 GB |     false |      false |
+------------------------+------------------+---------+---------+-----------+------------+
"""
BOX = """\
┌────┬──────┐
│ id │ name │
├────┼──────┤
│  1 │ a b  │
└────┴──────┘
"""
PSQL = " id | name\n----+------\n  1 | a\n  2 | b c\n(2 rows)\n"


def _context(**more: Any) -> dict[str, Any]:
    return {"now": RunNow(lambda: JAN_1_2026), "df": DF, "pods": KUBECTL, "etcd": ETCD, "box": BOX,
            "psql": PSQL, **more}


def render(text: str, **more: Any) -> str:
    return templating.render(text, _context(**more))


def value(expression: str, **more: Any) -> Any:
    return templating.evaluate(expression, _context(**more))


@pytest.mark.parametrize(("text", "expected"), [
    ("'2.5GiB'", 2684354560), ("'4 kB'", 4000), ("'20G'", 21474836480), ("'512Mi'", 536870912),
    ("'1.5K'", 1536), ("'25 kB'", 25000), ("'2.1 GB'", 2100000000), ("'100'", 100), ("'7 bytes'", 7),
    ("3.6", 4), ("'1e3'", 1000), ("'0'", 0),
])
def test_bytes_reads_the_sizes_commands_print(text: str, expected: int) -> None:
    assert value(f"{text} | bytes") == expected


@pytest.mark.parametrize("text", ["'lots'", "'12 parsecs'", "'1.2.3G'", "''", "none", "'inf'", "'1e30 EiB'"])
def test_bytes_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(TemplateError, match="bytes: "):
        value(f"{text} | bytes")


@pytest.mark.parametrize(("text", "expected"), [
    ("2684354560 | human_bytes", "2.5 GiB"), ("2684354560 | human_bytes(si=true)", "2.7 GB"),
    ("1024 | human_bytes", "1 KiB"), ("512 | human_bytes", "512 B"), ("'20G' | human_bytes", "20 GiB"),
    ("1500 | human_bytes(si=true)", "1.5 kB"), ("123456789 | human_bytes(precision=2)", "117.74 MiB"),
    ("0 | human_bytes", "0 B"),
])
def test_human_bytes_writes_a_size_for_people(text: str, expected: str) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("'1h30m'", 5400.0), ("'15s'", 15.0), ("'500ms'", 0.5), ("'2d4h'", 187200.0), ("'1.5h'", 5400.0),
    ("'01:02:03'", 3723.0), ("'05:30'", 330.0), ("'3-04:05:06'", 273906.0), ("42", 42.0), ("'42'", 42.0),
    ("'1w'", 604800.0), ("'-5s'", -5.0), ("'1m 30s'", 90.0), ("'250us'", 0.00025),
])
def test_seconds_reads_durations(text: str, expected: float) -> None:
    assert value(f"{text} | seconds") == pytest.approx(expected)


@pytest.mark.parametrize("text", ["'soon'", "'5 parsecs'", "'1h x'", "''", "'h'"])
def test_seconds_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(TemplateError, match="seconds: cannot read"):
        value(f"{text} | seconds")


@pytest.mark.parametrize("text", [
    "notAfter=Jan 15 00:00:00 2026 GMT", "Jan 15 00:00:00 2026 GMT", "notAfter=Jan  5 00:00:00 2026 GMT",
    "2026-01-15T00:00:00Z", "2026-01-15T01:00:00+01:00", "2026-01-15 00:00:00", "2026-01-15",
    "Thu, 15 Jan 2026 00:00:00 +0000", "Thu Jan 15 00:00:00 UTC 2026", "1768435200", "1768435200000",
])
def test_to_datetime_reads_the_dates_commands_print(text: str) -> None:
    moment = value("t | to_datetime", t=text)
    day = 5 if "Jan  5" in text else 15
    assert moment == datetime(2026, 1, day, tzinfo=timezone.utc)


def test_to_datetime_takes_a_format_and_refuses_what_it_cannot_read() -> None:
    assert value("'15/01/2026 10:00' | to_datetime(format='%d/%m/%Y %H:%M')") == \
        datetime(2026, 1, 15, 10, tzinfo=timezone.utc)
    with pytest.raises(TemplateError, match="to_datetime: cannot read 'next tuesday'"):
        value("'next tuesday' | to_datetime")


def test_now_and_days_until_count_on_the_runs_clock() -> None:
    """A drill's clock starts 2026-01-01: a certificate ending on the 15th has 14 days left."""
    assert render("{{ now() }}") == "2026-01-01 00:00:00+00:00"
    assert value("('notAfter=Jan 15 00:00:00 2026 GMT' | to_datetime - now()).days") == 14
    assert value("'Jan 15 12:00:00 2026 GMT' | days_until") == 14.5
    assert value("'2025-12-31T00:00:00Z' | days_until") == -1.0
    assert value("'2026-01-15' | to_datetime > now()") is True


def test_days_until_without_a_run_uses_the_real_time() -> None:
    assert templating.evaluate("'2000-01-01' | days_until", {}) < -9000


def test_parse_table_reads_whitespace_tables_by_their_columns() -> None:
    rows = value("df | parse_table")
    assert rows[2] == {"Filesystem": "/dev/sda1", "Size": "20G", "Used": "7.5G", "Avail": "12G", "Use%": "40%",
                       "Mounted on": "/"}
    pods = value("pods | parse_table")
    assert [p["RESTARTS"] for p in pods] == ["3 (2d ago)", "0"]
    assert pods[1] == {"NAME": "web-7d4b9c8c5d-fghij", "READY": "0/1", "STATUS": "Pending", "RESTARTS": "0",
                       "AGE": "41m"}


def test_parse_table_reads_boxed_tables() -> None:
    members = value("etcd | parse_table")
    assert [(m["ENDPOINT"], m["DB SIZE"], m["IS LEADER"]) for m in members] == [
        ("https://10.0.0.1:2379", "25 kB", "true"), ("https://10.0.0.2:2379", "2.1 GB", "false")]
    assert value("box | parse_table") == [{"id": "1", "name": "a b"}]
    assert value("psql | parse_table") == [{"id": "1", "name": "a"}, {"id": "2", "name": "b c"}]


def test_parse_table_with_named_columns_and_empty_text() -> None:
    assert value("' 12 sleep 100\\n 13 sh' | parse_table(columns=['pid', 'cmd'])") == [
        {"pid": "12", "cmd": "sleep 100"}, {"pid": "13", "cmd": "sh"}]
    assert value("'' | parse_table") == []
    assert value("'NAME  AGE' | parse_table") == []


def test_the_helpers_compose_as_a_runbook_uses_them() -> None:
    """The etcd member over quota, and the fullest filesystem, in one expression each."""
    biggest = value("(etcd | parse_table | map(attribute='DB SIZE') | map('bytes') | max) | human_bytes(si=true)")
    assert biggest == "2.1 GB"
    assert value("(df | parse_table | selectattr('Mounted on', 'eq', '/') | first)['Use%'] | replace('%', '') "
                 "| int") == 40


def test_from_yaml_reads_yaml_as_the_runbook_loader_does() -> None:
    assert value("'a: [1, 2]\\nb: yes' | from_yaml") == {"a": [1, 2], "b": True}
    with pytest.raises(TemplateError, match="from_yaml: not valid YAML"):
        value("'a: [1' | from_yaml")


def test_from_yaml_refuses_an_alias_bomb_before_anyone_expands_it() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    with pytest.raises(TemplateError, match="too costly to evaluate: from_yaml would make"):
        render("{{ t | from_yaml }}", t=bomb)


def test_json_query_is_jmespath_as_ansibles_json_query() -> None:
    data = {"items": [{"name": "a", "status": "Running", "n": 2}, {"name": "b", "status": "Failed", "n": 5}]}
    assert value("d | json_query(\"items[?status=='Running'].name\")", d=data) == ["a"]
    assert value("d | json_query('max_by(items, &n).name')", d=data) == "b"
    assert value("d | json_query('length(items)')", d=data) == 2
    with pytest.raises(TemplateError, match="json_query: "):
        value("d | json_query('items[?')", d=data)


def test_json_query_cannot_build_a_value_beyond_the_limits() -> None:
    """Each `| [@, @]` doubles the value: 30 of them would make a billion copies."""
    doubling = "[@, @]" + " | [@, @]" * 30
    for query in (doubling, doubling + " | to_string(@)"):
        with pytest.raises(TemplateError, match="too costly to evaluate"):
            value(f"d | json_query('{query}')", d="x" * 1000)
    assert value("d | json_query('[@, @]')", d=[1]) == [[1], [1]]


def test_parse_table_runs_under_the_render_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_TEMPLATE_TIMEOUT", "0.01")
    huge = ("a " * 4000 + "\n") * 1500
    with pytest.raises(TemplateError, match="too costly to evaluate: the template took longer"):
        render("{{ t | parse_table | length }}", t=huge)


# -- the tiers agree ---------------------------------------------------------------------------

AGREEING = [
    "{{ '2.5GiB' | bytes }}", "{{ size | bytes > 1000 }}", "{{ 2684354560 | human_bytes }}",
    "{{ '1h30m' | seconds }}", "{{ '500ms' | seconds * 2 }}", "{{ df | parse_table }}",
    "{{ (etcd | parse_table)[1]['DB SIZE'] | bytes }}", "{{ 'a: 1' | from_yaml }}",
    "{{ data | json_query('a[0]') }}", "{{ 'Jan 15 00:00:00 2026 GMT' | to_datetime }}",
    "{{ size | bytes | human_bytes }}", "{{ pods | parse_table }}",
]


@pytest.mark.parametrize("shell", [False, True])
@pytest.mark.parametrize("text", AGREEING)
def test_every_tier_renders_the_helpers_as_jinja_does(text: str, shell: bool) -> None:
    ctx = _context(size="20G", data={"a": [1, 2]})
    expected = templating.renderer(text, shell, tier="jinja")(ctx)
    for tier in ("quick", "fast"):
        try:
            mine = templating.renderer(text, shell, tier=tier)
        except ValueError:
            continue  # this tier leaves the template to the next one
        assert mine(ctx) == expected, (tier, text)
    assert templating.renderer(text, shell, tier="quick")  # the quick tier takes every one of these


@pytest.mark.parametrize("text", ["'x' | bytes", "'1 parsec' | seconds", "'a: [' | from_yaml",
                                  "'soon' | to_datetime", "d | json_query('a[')"])
def test_every_tier_fails_where_jinja_fails(text: str) -> None:
    from engine.templates import _quick_eval as quick

    compiled = quick.compile_expression(text, templating._quick())
    assert compiled is not None
    with pytest.raises(ValueError) as quick_error:
        compiled({"d": {"a": 1}})
    env = templating.environment(False)
    with pytest.raises(ValueError) as jinja_error:
        env.compile_expression(text, undefined_to_none=False)(d={"a": 1})
    assert str(quick_error.value) == str(jinja_error.value)


def test_a_placeholder_passes_through_every_helper() -> None:
    """A dry-run shows what the helper reads, never a made-up value."""
    unknown = templating.Placeholder("steps.df.stdout")
    for name in ("bytes", "human_bytes", "seconds", "parse_table", "from_yaml", "to_datetime", "days_until"):
        assert render(f"{{{{ x | {name} }}}}", x=unknown) == "<steps.df.stdout>", name
    assert render("{{ x | json_query('a') }}", x=unknown) == "<steps.df.stdout>"


def test_a_secret_shown_as_stars_fails_the_shown_rendering_not_the_run() -> None:
    """What is shown is rendered from *** (Masked): a helper cannot read a size from it, so the
    shown form stays masked, while the run itself reads the real value."""
    with pytest.raises(TemplateError, match="bytes: cannot read '\\*\\*\\*'"):
        render("{{ x | bytes }}", x=templating.Masked())
    assert render("{{ x | bytes }}", x="2k") == "2048"


def test_a_runs_now_is_its_clock_so_a_drill_counts_days_in_simulated_time() -> None:
    """On the virtual clock (2026-01-01, one day of waiting later) a certificate ending
    on 2026-01-15 has 13 days left, whatever the real date is."""
    from engine.testing import ScriptedExecutor, run_text

    text = ("kind: runbook\nversion: 1\nid: unit\ntitle: Unit\ndefaults: {timeout: 30s}\n"
            "triage:\n  - {id: pause, wait: 1d}\n"
            "  - id: cert\n    run: openssl x509 -enddate -noout -in tls.crt\n"
            "    outputs: {left: \"{{ stdout | days_until }}\", at: \"{{ now().isoformat() }}\","
            " soon: \"{{ (stdout | to_datetime - now()).days < 14 }}\"}\n")
    result, events = run_text(text, executor=ScriptedExecutor({"cert": "notAfter=Jan 15 00:00:00 2026 GMT\n"}))
    assert result.outcome == "resolved"
    [cert] = [e for e in events.named("step.finished") if getattr(e, "step", "") == "cert"]
    assert cert.outputs == {"left": 13.0, "at": "2026-01-02T00:00:00+00:00", "soon": True}  # type: ignore[attr-defined]
