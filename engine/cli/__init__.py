"""CLI: the `runbook` command. `entry` is the console script (`python -m engine` too): it
runs a plain `runbook validate` and a plain live `runbook run` on a fast path without
click (`_validate_main`, `_run_main`, shared with the click commands) and hands
everything else to `commands`, the click group. Each
command group is a module: `authoring` (validate, schema, new, rules), `live` (run,
resume, runs), `drills` (test, drill, scenario from-run), `reports` (report, stats,
graph). `base` maps EngineError to exit codes in one place and says where output goes.
Commands parse arguments, call the library and print; the library never prints or exits.

Layer: the top. It may import every package.
"""

__all__ = ["authoring", "base", "commands", "drills", "entry", "live", "reports"]
