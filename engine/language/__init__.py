"""Language: the files people write (runbooks, scenarios, inventories) and `runbook validate`.

Owns reading YAML with positions and hard limits (loader), the JSON Schemas and their
compiled validator, the typed model built from valid data, every lint rule (runbook,
scenario, inventory, includes, values), diagnostics and their output formats, the
validation cache, durations, and the data files a run is handed (alerts, inputs).

Layer: above templates. It may import `engine.templates`, `engine.errors` and
`engine.home`; nothing that runs anything.
"""
