"""Language: the files people write (runbooks, scenarios, inventories) and `runbook validate`.

Owns reading YAML with positions and hard limits (loader, source_map), the JSON Schemas
and their compiled validator (schema), the typed model and building it from valid data
(model, builder, scenario, inventory), the strings that hold templates (fields), every
lint rule (rules is the registry, lint pulls the families together), diagnostics and
their output formats, validation of files and trees (validation, includes, cache), the
models of files checked clean kept for the next run (model_cache), the limits files are
read within (limits), durations, channels, scaffolds, and the data files a run is handed
(datafile). Which hosts a target means is decided in engine/fleet/hosts.py, not here.

Layer: above templates. It may import `engine.templates`, `engine.errors` and
`engine.home`; nothing that runs anything.
"""

from ._yaml_start import defer_reader_pattern

defer_reader_pattern()  # before anything here imports PyYAML (see _yaml_start)

__all__ = [
    "builder", "cache", "channels", "datafile", "diagnostics", "duration", "fields", "formats", "includes",
    "inventory", "limits", "lint", "loader", "model", "model_cache", "rules", "runbook_check", "scaffold", "scenario",
    "schema", "source_map", "validation",
]
