"""``glmeval init``: what it writes runs green at once, in an empty git repository, and is safe to rerun.

Every run goes to the local server through the real SDK (``--local``), from the scaffolded
directory as the user's working directory, the way the printed next command runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result

from glmeval.cli import init as init_module
from glmeval.cli import main


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty git repository as the working directory, with no CI or database settings leaking in."""
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    monkeypatch.chdir(root)
    for name in ("GITHUB_STEP_SUMMARY", "GLMEVAL_DB", "ZHIPUAI_API_KEY", "ZHIPUAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return root


def _invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def _run_suite(suite: str) -> Result:
    return _invoke("run", suite, "--local", "--local-speed", "0", "-q", "--db", ".glmeval/results.db")


def _next_suite(output: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith("next: "))
    assert line.endswith(" --local"), line
    return line.split("glmeval run ", 1)[1].removesuffix(" --local")


def test_init_then_run_is_green(repo: Path) -> None:
    result = _invoke("init")
    assert result.exit_code == 0, result.output
    suite = _next_suite(result.output)
    assert suite == "suites/first.glmeval.yaml"
    for path in (suite, "suite.schema.json", ".github/workflows/glmeval.yml", ".gitignore"):
        assert (repo / path).is_file(), path
        assert path in result.output
    text = (repo / suite).read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=../suite.schema.json"
    assert (repo / "suites" / "../suite.schema.json").resolve() == (repo / "suite.schema.json").resolve()
    assert "glm-4.7-flash" in text and "中国的首都是哪里？" in text and "contains: 北京" in text

    ran = _run_suite(suite)
    assert ran.exit_code == 0, ran.output
    assert "0 failed, 0 errors" in ran.output


@pytest.mark.parametrize("template", init_module.TEMPLATES)
def test_every_template_runs_green(repo: Path, template: str) -> None:
    result = _invoke("init", "--template", template)
    assert result.exit_code == 0, result.output
    ran = _run_suite(_next_suite(result.output))
    assert ran.exit_code == 0, ran.output
    assert "0 failed, 0 errors" in ran.output


def test_model_and_own_prompt(repo: Path) -> None:
    result = _invoke("init", "--model", "glm-4-flash", "--prompt", "用一句话介绍一下杭州: 西湖")
    assert result.exit_code == 0, result.output
    suite = yaml.safe_load((repo / "suites/first.glmeval.yaml").read_text(encoding="utf-8"))
    assert suite["grid"]["model"] == ["glm-4-flash"]
    assert suite["cases"][-1]["vars"]["question"] == "用一句话介绍一下杭州: 西湖"
    ran = _run_suite("suites/first.glmeval.yaml")
    assert ran.exit_code == 0, ran.output


def test_into_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _invoke("init", "new-project")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new-project/suites/first.glmeval.yaml").is_file()
    assert "next: cd new-project && glmeval run suites/first.glmeval.yaml --local" in result.output


def test_asks_only_on_a_terminal(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(init_module, "on_terminal", lambda: False)
    quiet = _invoke("init", input="glm-4-plus\n别的问题\n")
    assert "Model" not in quiet.output
    assert "glm-4.7-flash" in (repo / "suites/first.glmeval.yaml").read_text(encoding="utf-8")

    monkeypatch.setattr(init_module, "on_terminal", lambda: True)
    asked = _invoke("init", "--force", input="glm-4-plus\n日本的首都是哪里？\n")
    assert asked.exit_code == 0, asked.output
    assert "Model [glm-4.7-flash]" in asked.output
    text = (repo / "suites/first.glmeval.yaml").read_text(encoding="utf-8")
    assert "glm-4-plus" in text and "日本的首都是哪里？" in text

    flags = _invoke("init", "--force", "--model", "glm-4", "--prompt", "你好吗")
    assert "Model [" not in flags.output and "question" not in flags.output


def test_rerun_without_force_changes_nothing(repo: Path) -> None:
    assert _invoke("init").exit_code == 0
    (repo / "suites/first.glmeval.yaml").write_text("# mine\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts[:1]}

    again = _invoke("init", "--model", "glm-4")
    assert again.exit_code == 0, again.output
    after = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts[:1]}
    assert after == before
    skipped = [line for line in again.output.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 3, again.output
    assert "nothing changed" in again.output

    forced = _invoke("init", "--force")
    assert forced.exit_code == 0
    assert (repo / "suites/first.glmeval.yaml").read_text(encoding="utf-8") != "# mine\n"


def test_gitignore_gets_each_entry_once(repo: Path) -> None:
    (repo / ".gitignore").write_text("node_modules\n/.glmeval", encoding="utf-8")
    _invoke("init")
    _invoke("init", "--force")
    lines = (repo / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ["node_modules", "/.glmeval"]
    assert [line.strip("/") for line in lines].count(".glmeval") == 1
    assert lines.count("reports/") == 1
    ignored = subprocess.run(
        ["git", "check-ignore", ".glmeval/results.db", "reports/x/report.html"], cwd=repo, capture_output=True, text=True
    )
    assert ignored.stdout.split() == [".glmeval/results.db", "reports/x/report.html"]


def test_gitignore_created_when_missing(repo: Path) -> None:
    _invoke("init")
    assert (repo / ".gitignore").read_text(encoding="utf-8").splitlines()[1:] == [".glmeval/", "reports/"]


@pytest.mark.parametrize("template", init_module.TEMPLATES)
def test_schema_validates_the_suite(repo: Path, template: str) -> None:
    import json

    _invoke("init", "--template", template)
    schema = json.loads((repo / "suite.schema.json").read_text(encoding="utf-8"))
    suite = yaml.safe_load((repo / init_module.suite_file(template)).read_text(encoding="utf-8"))
    jsonschema.validate(suite, schema)


def _workflow(repo: Path) -> dict[Any, Any]:
    data = yaml.safe_load((repo / ".github/workflows/glmeval.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_workflow_is_github_actions_shape(repo: Path) -> None:
    _invoke("init")
    data = _workflow(repo)
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads the bare key `on` as true; GitHub does not
    assert set(triggers) == {"push", "pull_request"}
    assert triggers["push"]["branches"] == ["main"]
    assert data["jobs"]
    runs = []
    for job in data["jobs"].values():
        assert job["runs-on"]
        assert job["steps"]
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step
            runs.append(step.get("run", ""))
    gate = [run for run in runs if "glmeval run " in run]
    assert len(gate) == 1
    assert "--baseline latest" in gate[0] and "--fail-on regression" in gate[0]
    assert any("glmeval import" in run for run in runs)
    assert any("glmeval export" in run for run in runs)


def _step(data: dict[Any, Any], name: str) -> str:
    steps = next(iter(data["jobs"].values()))["steps"]
    run = next(step["run"] for step in steps if step.get("name") == name)
    assert isinstance(run, str)
    return run


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("glmeval") is None, reason="needs bash and glmeval on PATH")
def test_workflow_steps_run_main_then_pull_request(repo: Path) -> None:
    """The workflow's own shell steps, in order: main's job runs and exports; a pull request's job
    imports that into a fresh database and gates against it."""
    _invoke("init")
    data = _workflow(repo)
    job_env = {key: str(value) for key, value in next(iter(data["jobs"].values()))["env"].items() if "${{" not in str(value)}
    env = {**os.environ, **job_env}
    env.pop("GITHUB_STEP_SUMMARY", None)

    def sh(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=repo, env=env, capture_output=True, text=True)

    main_run = sh(_step(data, "Run the suites"))
    assert main_run.returncode == 0, main_run.stdout + main_run.stderr
    exported = sh(_step(data, "Export the runs"))
    assert exported.returncode == 0, exported.stderr
    files = list((repo / "export").glob("*.json"))
    assert len(files) == 1

    shutil.rmtree(repo / ".glmeval")
    imported = sh(f"glmeval import {' '.join(str(f) for f in files)}")
    assert imported.returncode == 0, imported.stderr
    pr_run = sh(_step(data, "Run the suites"))
    assert pr_run.returncode == 0, pr_run.stdout + pr_run.stderr
    assert files[0].stem in pr_run.stdout + pr_run.stderr  # compared with main's run
