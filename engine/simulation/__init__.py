"""Simulation: drills and `runbook test`. `world` answers steps from a scenario (commands,
requests, hosts, notifications), `people` are scripted participants, `drill` runs a
scenario and scores it, `suite` is `runbook test`, `trainer` the interactive game day
(`runbook drill`), `trials` Monte Carlo estimates, `replay` turns a past run's journal
into a scenario, and `guard` proves that nothing real is touched.

Layer: above run. It may import `engine.run` and everything below; never reporting or
the CLI.
"""

__all__ = ["drill", "guard", "people", "replay", "suite", "trainer", "trials", "world"]
