"""The one exception type the CLI turns into a single clear line and exit code 2.

Everything a user can get wrong (a malformed suite, a missing key, a bad flag, an unreachable
server, a corrupt database) is raised as :class:`GlmevalError` with a message that names the
file and line or says what to do; the CLI prints it without a traceback unless ``--debug``.
"""

from __future__ import annotations


class GlmevalError(Exception):
    """A user-facing problem. ``str(e)`` is the whole message, ready to print."""

    exit_code = 2


class SuiteError(GlmevalError):
    """A suite file that cannot be loaded. Carries every problem found, each with file and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class RunAborted(GlmevalError):
    """A condition that must stop the whole run at once (bad key, exhausted balance, budget)."""
