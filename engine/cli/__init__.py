"""CLI: the `runbook` command. Parses arguments, calls the library, prints, and maps
`EngineError` to exit codes in one place (`entry`); a fast path runs `runbook validate`
without importing click.

Layer: the top. It may import every package.
"""
