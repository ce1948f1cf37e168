"""Executors: run one rendered invocation and return a Result; the runner does not know
which one it drives. `base` is the protocol and the data that crosses it (Invocation,
Result, OutputSink, Cancel); `local` runs commands on this machine, `http` makes
requests, `notify` delivers to channels (stdout, a file, a webhook, PagerDuty,
Opsgenie, email, Slack threads), `prompts` asks people (terminal, scripted), `secrets`
reads a secret from a file, a command or the environment; `timestamps` is the time
format of every record written.

Layer: above language. It may import `engine.language`, `engine.templates` and the
top-level `errors`/`home`; never the run loop.
"""

__all__ = ["base", "channels_file", "http", "local", "notify", "prompts", "secrets", "timestamps"]
