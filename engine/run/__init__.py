"""Run: one run of a runbook. `runner` is the execution loop (phases, steps, outcome),
handed its `services` (executors, prompter, notifier, fan-out); `session` assembles a
live run (lock, journal, console, signals) and resumes one (`recovery` reads what the
journal says, `continuation` turns the operator's choices into a Resume). A step is run
by the step driver (`_step`) and its kinds (`_kinds`, `_commands`, `_hosts`, `_manual`,
`_assignments`, `_for_each`, `_polling`), which see the run only through the narrow
RunView of `_driver`; an action's outcome is an `attempt`. Around them: `events` and
the observers that receive them (`journal_writer`, and the `console` on the operator's
`terminal`), the `journal` read back (`records`, `metrics`, `history`), the run's
`state`, `inputs`, `answers` and `alerts`, secret `masking`, `lock`s, `clock`s, incident
command (`incident`, `messenger`, `outbox`, `wording`), `leftovers` found on resume, and
the dry-run `plan`; the `digest` of the runbook's text a run journals.

Layer: above fleet. It may import `engine.fleet`, `engine.executors`,
`engine.language` and `engine.templates`; never simulation, reporting or the CLI.
"""

__all__ = [
    "alerts", "answers", "attempt", "clock", "console", "continuation", "digest", "events", "history", "incident",
    "inputs", "journal", "journal_writer", "leftovers", "lock", "masking", "messenger", "metrics", "outbox", "plan",
    "records", "recovery", "runner", "services", "session", "state", "terminal", "wording",
]
