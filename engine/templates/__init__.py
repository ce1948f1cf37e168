"""Templates: sandboxed, strict Jinja2 and the quick paths that answer exactly as it does.

Owns rendering `{{ }}` templates and bare expressions (`when`, `expect`, `until`), the
filters and tests runbooks use, shell quoting by context, and the bounds on every render
(size, time, signals). `templating` is the public module; the tiers beside it
(`_quick_jinja`, `_quick_eval`, `_jinja_fast`), the bounds (`_limits`) and the shell
scanner (`_shell`) are private.

Layer: the lowest. It imports nothing from the engine but `engine.errors`.
"""
