"""`python -m engine` is the `runbook` command."""

from .cli import main

if __name__ == "__main__":
    main()
