"""`python -m engine` is the `runbook` command."""

from engine.cli.entry import main

if __name__ == "__main__":
    main()
