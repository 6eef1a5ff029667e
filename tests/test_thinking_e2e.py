"""Thinking models end to end: a model × thinking grid, streamed through the real SDK to the local server.

What a user comparing glm-5, glm-4.7, glm-4.5-air and glm-4.5-flash with thinking on and off would
look at: reasoning kept apart from each answer and counted in tokens, the time to the first
reasoning token before the time to the first answer token, readable variant labels, the summary
and the HTML report showing reasoning tokens and the thinking effect, and the columns of
``glmeval.results()``. Also: vision cases, and an unknown model name being only a warning.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import glmeval
from glmeval.cli import main

MODELS = ["glm-5", "glm-4.7", "glm-4.5-air", "glm-4.5-flash"]

GRID_SUITE = """\
name: thinking-grid
mode: stream
grid:
  model: [glm-5, glm-4.7, glm-4.5-air, glm-4.5-flash]
  thinking: [on, off]
messages:
  - {role: user, content: "{{ question }}"}
cases:
  - id: capital
    vars: {question: 中国的首都是哪里？}
    checks: [{contains: 北京}]
  - id: hello
    vars: {question: 你好}
"""


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("thinking")
    suite = folder / "grid.yaml"
    suite.write_text(GRID_SUITE, encoding="utf-8")
    db = folder / "h.db"
    result = CliRunner().invoke(
        main, ["run", str(suite), "--local", "--local-speed", "0.05", "--db", str(db), "--out", str(folder / "rep")]
    )
    assert result.exit_code == 0, result.output
    return folder, result.output


def _frame(folder: Path):  # type: ignore[no-untyped-def]
    return glmeval.results(db=folder / "h.db")


def test_labels_read_thinking_on_and_off(grid_run: tuple[Path, str]) -> None:
    frame = _frame(grid_run[0])
    labels = set(frame["variant_id"])
    assert labels == {f"{m} thinking={t}" for m in MODELS for t in ("on", "off")}


def test_reasoning_apart_from_the_answer(grid_run: tuple[Path, str]) -> None:
    frame = _frame(grid_run[0])
    for column in ("reasoning", "reasoning_tokens", "ttfr_ms", "thinking"):
        assert column in frame.columns
    on = frame[frame["variant_id"].str.endswith("thinking=on")]
    off = frame[frame["variant_id"].str.endswith("thinking=off")]
    assert len(on) == len(off) == len(MODELS) * 2
    for row in on.to_dict("records"):
        assert row["reasoning"], row["variant_id"]
        assert row["reasoning_tokens"] > 0
        assert row["reasoning_tokens"] < row["completion_tokens"]
        assert row["reasoning"] not in row["output"]
        assert row["ttfr_ms"] < row["ttft_ms"], (row["variant_id"], row["ttfr_ms"], row["ttft_ms"])
        assert row["thinking"] == "on"
    for row in off.to_dict("records"):
        assert not row["reasoning"]
        assert not row["reasoning_tokens"] or math.isnan(row["reasoning_tokens"])
        assert row["thinking"] == "off"


def test_summary_and_html_show_reasoning_and_the_thinking_effect(grid_run: tuple[Path, str]) -> None:
    folder, output = grid_run
    html = next((folder / "rep").rglob("report.html")).read_text(encoding="utf-8")
    markdown = next((folder / "rep").rglob("report.md")).read_text(encoding="utf-8")
    summary = markdown.split("## Summary by variant", 1)[1].split("##", 1)[0]
    assert "reasoning tok" in summary and "TTFR" in summary
    assert "Thinking off → on, per model" in markdown
    assert '<details class="reasoning">' in html
    effects = html.split('id="effects"', 1)[1]
    assert "thinking off → on, per model" in effects
    assert "reasoning tok" in effects


def test_old_models_unchanged(tmp_path: Path) -> None:
    suite = tmp_path / "old.yaml"
    suite.write_text(
        "name: old\ngrid: {model: [glm-4, glm-3-turbo]}\nmessages: [{role: user, content: 你好}]\ncases: [{id: hi}]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(tmp_path / "h.db"),
                                       "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    frame = glmeval.results(db=tmp_path / "h.db")
    assert set(frame["variant_id"]) == {"glm-4", "glm-3-turbo"}
    assert not frame["reasoning"].astype(bool).any()
    assert frame["thinking"].isna().all()


VISION = """\
name: vision-check
grid: {{model: [{model}]}}
messages:
  - role: user
    content:
      - {{type: text, text: 这张图片是什么颜色？}}
      - {{image: red.png}}
cases:
  - id: red
    checks: [{{contains: 红}}]
"""


def test_vision_case_runs_on_a_vision_model_and_is_an_error_on_a_text_model(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parent.parent / "suites" / "images" / "red-64x48.png"
    (tmp_path / "red.png").write_bytes(source.read_bytes())
    good = tmp_path / "good.yaml"
    good.write_text(VISION.format(model="glm-4.6v"), encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(good), "--local", "--local-speed", "0", "--db", str(tmp_path / "h.db"),
                                       "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(VISION.format(model="glm-4.7"), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert str(bad) in lines[0] and "glm-4.7" in lines[0] and "glm-4.6v" in lines[0]
    assert "Traceback" not in result.output


def test_unknown_model_is_a_warning(tmp_path: Path) -> None:
    suite = tmp_path / "new.yaml"
    suite.write_text("name: new\nmodel: glm-4.8-preview\nmessages: [{role: user, content: 你好}]\ncases: [{id: hi}]\n",
                     encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(suite)])
    assert result.exit_code == 0, result.output
    assert "glm-4.8-preview" in result.output


def test_glm_fixture_takes_readable_thinking(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_think="""
def test_on(glm):
    answer = glm.chat("中国的首都是哪里？", model="glm-4.7", thinking="on")
    assert answer.reasoning and answer.reasoning_tokens > 0
    assert answer.reasoning not in answer.text
    glm.check(answer, {"contains": "北京"})


def test_off(glm):
    answer = glm.chat("中国的首都是哪里？", model="glm-4.7", thinking=False)
    assert not answer.reasoning
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:benchmark", "--glmeval-local", "--glmeval-local-speed", "0")
    result.assert_outcomes(passed=2)
