"""Running the `modelnotes` command from a fresh interpreter, as a user types it.

Shared by the CLI tests; the checkout's src/ goes first on PYTHONPATH so the command runs
whether or not the package is installed.
"""

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC),
                                                                os.environ.get("PYTHONPATH")])))


def run(*args: str) -> subprocess.CompletedProcess:
    """`modelnotes ARGS...` in a new process; its exit code, stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "modelnotes.cli", *args], capture_output=True,
                          text=True, timeout=120, env=ENV)
