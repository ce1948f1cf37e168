"""Simulation: drills and `runbook test`. Simulated worlds that answer steps from a
scenario, scripted people, the trainer's console, drill scoring, Monte Carlo trials,
replay of a past run, and the guard that proves nothing real is touched.

Layer: above run. It may import `engine.run` and everything below; never reporting or
the CLI.
"""
