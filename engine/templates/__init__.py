"""Templates: sandboxed, strict Jinja2 and the quick paths that answer exactly as it does.

Owns rendering `{{ }}` templates and bare expressions (`when`, `expect`, `until`), the
filters and tests runbooks use, shell quoting by context, and the bounds on every render
(size, time, signals). Public: `templating` (render, evaluate, analyze: the module the
rest of the engine uses), `values` (Raw, Masked, Placeholder), `filters` (ours and the
names of Jinja's own), `shell` (where a value lands in a command and how it is escaped
there), `comparisons` (what a template compares with literals, for lint) and `patterns`
(regular expressions compiled at first use, which any layer may use). Private
beside them: the quick tiers (`_quick_jinja`, `_quick_eval`, `_jinja_fast`), the Jinja
environment (`_environment`), the bounds (`_limits`) and the shell scanner
(`_shell_scanner`). Importing any of them never imports Jinja: the first template the
quick path (`_quick_jinja`, `_quick_eval`) does not answer does.

Layer: the lowest. It imports nothing from the engine but `engine.errors`.
"""

__all__ = ["comparisons", "filters", "patterns", "shell", "templating", "values"]
