"""``glmeval init [DIR]``: scaffold a first suite, its editor schema, a CI workflow and ``.gitignore``.

A newcomer should get from nothing to a green run in one command, so everything written here
runs at once with ``glmeval run SUITE --local`` (the checks are ones the local server's replies
satisfy). Existing files are never overwritten without ``--force``; ``.gitignore`` is only ever
appended to. Questions are asked only on a terminal, so scripts and CI never hang on a prompt.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import click

from glmeval.cli.group import main

DEFAULT_MODEL = "glm-4.7-flash"
DEFAULT_PROMPT = "中国的首都是哪里？"
TEMPLATES = ("basic", "thinking", "json", "tools")
SCHEMA_FILE = "suite.schema.json"
WORKFLOW_FILE = Path(".github/workflows/glmeval.yml")
SUITES_GLOB = "suites/*.glmeval.yaml"
IGNORED = (".glmeval/", "reports/")

_DEFAULT_CHECKS = ("contains: 北京", "{type: max-chars, value: 200}")
# A prompt of the user's own: checks any answer meets, and a hint for the check that matters.
_OWN_CHECKS = (
    "{type: min-chars, value: 1}",
    "{type: finish-reason, value: stop}",
    "# contains: 回答里应当出现的词      (glmeval checks lists every check type)",
)
_PLAIN_SCALAR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")

Outcome = Literal["wrote", "skipped", "appended", "unchanged"]


@dataclass(frozen=True)
class Written:
    """What happened to one file: shown to the user one line each."""

    path: Path
    outcome: Outcome
    note: str = ""


def _starter(name: str) -> str:
    from importlib import resources  # here, not at the top: --help and --version skip it

    return resources.files("glmeval.init_templates").joinpath(name).read_text(encoding="utf-8")


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: bare when that reads back the same, else double-quoted."""
    if _PLAIN_SCALAR.fullmatch(value) and value.lower() not in {"yes", "no", "on", "off", "true", "false", "null", "y", "n"}:
        return value
    return json.dumps(value, ensure_ascii=False)


def suite_file(template: str) -> Path:
    """Where a template's suite goes: ``suites/first.glmeval.yaml`` for ``basic``, else by name."""
    return Path("suites") / f"{'first' if template == 'basic' else template}.glmeval.yaml"


def render_suite(template: str, model: str, prompt: str) -> str:
    """The suite text of ``template`` for ``model`` (and ``prompt``, which only ``basic`` asks)."""
    path = suite_file(template)
    checks = _DEFAULT_CHECKS if prompt == DEFAULT_PROMPT else _OWN_CHECKS
    check_lines = "\n".join(f"      {line}" if line.startswith("#") else f"      - {line}" for line in checks)
    schema = os.path.relpath(SCHEMA_FILE, path.parent).replace(os.sep, "/")
    return (
        _starter(f"{template}.glmeval.yaml")
        .replace("__SCHEMA__", schema)
        .replace("__SUITE__", path.as_posix())
        .replace("__NAME__", path.name.removesuffix(".glmeval.yaml"))
        .replace("__MODEL__", _scalar(model))
        .replace("__PROMPT__", json.dumps(prompt, ensure_ascii=False))
        .replace("__CHECKS__", check_lines)
    )


def render_workflow() -> str:
    return _starter("workflow.yaml").replace("__SUITES__", SUITES_GLOB)


def render_schema() -> str:
    from glmeval.suite import suite_json_schema

    return json.dumps(suite_json_schema(), ensure_ascii=False, indent=2) + "\n"


def write_file(root: Path, relative: Path, text: str, force: bool) -> Written:
    target = root / relative
    if target.exists() and not force:
        return Written(relative, "skipped", "exists; --force overwrites it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return Written(relative, "wrote")


def _ignore_key(line: str) -> str:
    return line.strip().strip("/")


def update_gitignore(root: Path, entries: tuple[str, ...] = IGNORED) -> Written:
    """Append the entries ``.gitignore`` lacks (``/x``, ``x`` and ``x/`` count as the same)."""
    path = root / ".gitignore"
    relative = Path(".gitignore")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {_ignore_key(line) for line in text.splitlines()}
    missing = [entry for entry in entries if _ignore_key(entry) not in present]
    if not missing:
        return Written(relative, "unchanged", f"already ignores {', '.join(entries)}")
    block = "# glmeval: results database and reports\n" + "".join(f"{entry}\n" for entry in missing)
    if text and not text.endswith("\n"):
        text += "\n"
    if text:
        text += "\n"
    path.write_text(text + block, encoding="utf-8")
    return Written(relative, "appended" if text else "wrote", ", ".join(missing))


def on_terminal() -> bool:
    """Whether a person can answer questions: stdin is a terminal (never in CI or a pipe)."""
    return sys.stdin.isatty()


def _ask(model: str | None, prompt: str | None, template: str | None) -> tuple[str, str, str]:
    """Fill the flags not given: by asking on a terminal, else with the defaults."""
    interactive = on_terminal()
    chosen = template or "basic"
    if model is None:
        model = click.prompt("Model", default=DEFAULT_MODEL) if interactive else DEFAULT_MODEL
    if prompt is None:
        asked = interactive and template is None
        prompt = click.prompt("A first question for it", default=DEFAULT_PROMPT) if asked else DEFAULT_PROMPT
    return model.strip(), prompt.strip(), chosen


@main.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", help=f"The suite's model (default {DEFAULT_MODEL}, free).")
@click.option("--prompt", help=f"The first case's question (default {DEFAULT_PROMPT}); with the basic template.")
@click.option("--template", type=click.Choice(TEMPLATES), help="A starter suite (default basic).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init_cmd(directory: Path, model: str | None, prompt: str | None, template: str | None, force: bool) -> None:
    """Scaffold a first suite, its editor schema, a GitHub Actions workflow and .gitignore entries in DIRECTORY."""
    if prompt is not None and template not in (None, "basic"):
        raise click.UsageError(f"--prompt goes with the basic template; the {template} template has its own cases")
    model, prompt, chosen = _ask(model, prompt, template)
    if not model:
        raise click.BadParameter("a model name cannot be empty", param_hint="--model")
    if not prompt:
        raise click.BadParameter("the question cannot be empty", param_hint="--prompt")
    directory.mkdir(parents=True, exist_ok=True)
    suite = suite_file(chosen)
    done = [
        write_file(directory, suite, render_suite(chosen, model, prompt), force),
        write_file(directory, Path(SCHEMA_FILE), render_schema(), force),
        write_file(directory, WORKFLOW_FILE, render_workflow(), force),
        update_gitignore(directory),
    ]
    for item in done:
        note = f" ({item.note})" if item.note else ""
        click.echo(f"{item.outcome:<9} {item.path.as_posix()}{note}")
    if all(item.outcome in ("skipped", "unchanged") for item in done):
        click.echo("nothing changed: every file was already there (--force overwrites them)")
    where = "" if directory.resolve() == Path.cwd().resolve() else f"cd {directory} && "
    click.echo(f"next: {where}glmeval run {suite.as_posix()} --local")


__all__ = ["init_cmd", "render_suite", "render_workflow", "update_gitignore", "TEMPLATES"]
