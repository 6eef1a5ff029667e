"""The ``glmeval`` command line.

Each command group lives in its own module and registers itself on :data:`main`
(:mod:`glmeval.cli.group`) as it is imported; importing this package loads them all. They
import only click and light helpers at module level (heavy libraries load inside the commands),
so ``--version`` and ``--help`` start quickly: ``tests/test_layout.py`` holds them to that.
"""

from __future__ import annotations

from glmeval.cli import history, info, init, migrate, report, serve, suites
from glmeval.cli import run as run_command

# Importing the submodule ``glmeval.cli.run`` bound the name ``run`` to it; this import, last,
# makes ``glmeval.cli.run`` the console entry point (pyproject.toml: ``glmeval.cli:run``).
from glmeval.cli.group import main, run

COMMAND_MODULES = (run_command, suites, serve, history, report, info, init, migrate)

__all__ = ["main", "run", "COMMAND_MODULES"]
