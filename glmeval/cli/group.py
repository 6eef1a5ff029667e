"""The root ``glmeval`` command group and the console entry point.

Command modules register on :data:`main` (``from glmeval.cli.group import main``); this
module imports none of them, so they can import it without a cycle through the package.
Every user error surfaces as one line on stderr and exit code 2; ``--debug`` shows the
traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from glmeval.errors import GlmevalError
from glmeval.version import __version__


def _traceback() -> None:
    """``--debug``: the traceback on stderr, then the same one line and exit code as without it."""
    import traceback

    traceback.print_exc()


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except GlmevalError as exc:
            if debug:
                _traceback()
            for line in str(exc).splitlines() or ["error"]:
                click.echo(f"error: {line}" if not line.startswith(("error", "  ")) else line, err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, BrokenPipeError):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if debug:
                _traceback()
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback and report it)",
                err=True,
            )
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glmeval")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Prompt evaluation and regression testing for ZhipuAI GLM models."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def run() -> None:
    """Console entry point: click's usage errors become one line and exit 2, like ours."""
    try:
        code = main.main(prog_name="glmeval", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # Output piped into `head` and closed: stop quietly, as other command-line tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    sys.exit(code if isinstance(code, int) else 0)
