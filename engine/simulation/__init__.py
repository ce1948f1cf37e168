"""Simulated worlds for drills and `runbook test`: nothing real is touched."""
