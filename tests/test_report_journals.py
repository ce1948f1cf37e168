"""The journals the report tests use (made in reportkit.py) are what those tests take them for."""

from __future__ import annotations

from pathlib import Path

from support import ROOT

from engine.run.journal import read_journal


def events(run_dir: Path) -> list[str]:
    return [str(r.get("event")) for r in read_journal(run_dir).records]


# -- the journals are what the report tests take them for ------------------------------------------


def test_live_runs_are_real_runs_with_the_expected_outcomes(live: dict[str, Path]) -> None:
    outcomes = {name: (read_journal(d).finished or {}).get("outcome") for name, d in live.items()}
    assert outcomes == {"ok": "resolved", "fail": "failed", "hostile": "resolved"}
    assert "step.attempt" in events(live["ok"]) and "approval" in events(live["ok"])
    assert "rollback.started" in events(live["fail"])


def test_killed_run_has_no_end_and_the_torn_copy_a_cut_line(crashed: dict[str, Path]) -> None:
    killed, torn = read_journal(crashed["killed"]), read_journal(crashed["torn"])
    assert not killed.complete and not killed.torn
    assert [r["event"] for r in killed.records[-2:]] == ["step.started", "step.process"]
    assert killed.records[-1]["step"] == "slow"
    assert torn.torn and len(torn.records) == len(killed.records)


def test_drills_cover_every_shipped_scenario(drills: dict[str, Path]) -> None:
    shipped = {p.stem for p in (ROOT / "scenarios").glob("*.yaml")}
    assert set(drills) == shipped
    assert all((read_journal(d).started or {}).get("scenario") == name for name, d in drills.items())


def test_fanout_fixture_differs_only_in_host_events(fanout: dict[str, Path]) -> None:
    with_events, without = events(fanout["with-host-events"]), events(fanout["without-host-events"])
    assert with_events.count("host.finished") == 3
    assert [e for e in with_events if e != "host.finished"] == without


def test_hostile_run_recorded_the_markup_verbatim(live: dict[str, Path]) -> None:
    text = (live["hostile"] / "journal.jsonl").read_text(encoding="utf-8")
    assert "<script>document.title='pwned'</script>" in text
