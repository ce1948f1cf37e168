"""Reporting: everything built from journals alone. Timelines, post-incident reviews,
drill debriefs, statistics across runs, HTML/Markdown/JSON renderers, and `runbook
graph` pictures of a runbook's flow.

Layer: above simulation (a debrief scores a drill). It may import `engine.simulation`
and everything below; never the CLI.
"""
