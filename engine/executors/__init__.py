"""Executors run one rendered invocation and return a Result; the runner does not know
which one it drives (local, SSH, HTTP, simulated)."""
