"""Run: one run of a runbook. The execution loop (runner) and the step driver, live
sessions and resume, the journal and its events, the run's state, inputs and answers,
secret masking, locks, the console, the dry-run plan, clocks, and incident command
(updates, escalation).

Layer: above fleet. It may import `engine.fleet`, `engine.executors`,
`engine.language` and `engine.templates`; never simulation, reporting or the CLI.
"""
