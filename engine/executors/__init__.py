"""Executors: run one rendered invocation and return a Result; the runner does not know
which one it drives. Local commands, HTTP requests, notification channels, and the
prompters that ask people (terminal, scripted).

Layer: above language. It may import `engine.language`, `engine.templates` and the
top-level `errors`/`home`; never the run loop.
"""
