"""`python -m engine` is the `runbook` command."""

from .entry import main

if __name__ == "__main__":
    main()
