"""The hostile suite's figures, for the issue's note:

    python tests/hostile/summary.py              # run the suite, then print the figures
    python tests/hostile/summary.py TALLY.jsonl  # the figures of a run that set $HOSTILE_TALLY

Cases tried per command and per family of hostile input; tracebacks, internal errors,
wrong exit codes, hangs, crashes, memory, leaked secrets, half-written journals and
injections, each counted (and each failing case listed)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hostile_harness import Tally  # noqa: E402


def main(argv: list[str]) -> int:
    if argv:
        tally = Tally.load(Path(argv[0]))
        code = 0
    else:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "tally.jsonl"
            path.touch()
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE)],
                                  env={**os.environ, "HOSTILE_TALLY": str(path)}, cwd=HERE.parent.parent)
            tally, code = Tally.load(path), done.returncode
    try:
        print("\n".join(tally.lines()), flush=True)
    except BrokenPipeError:  # `| head`: as the runbook command itself does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
