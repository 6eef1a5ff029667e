"""`glmeval report --history SUITE`: one self-contained HTML page of a suite's runs.

Three real runs (local server, real SDK) of a suite with a temperature axis, then the
dashboard: one file, nothing fetched, a chart per metric, every run, the temperature section,
and text from the suite escaped. Headless Chromium loads it when installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.report.dashboard import VARIANT_METRICS, load_history_dashboard, render_dashboard
from glmeval.report.demo import synth_run
from glmeval.store import Store

SUITE = """\
name: "dash <script>alert(1)</script>"
mode: sync
grid:
  model: [glm-4]
  temperature: [0.2, 0.9]
cases:
  - id: capital
    messages:
      - {role: user, content: 中国的首都是哪里？}
    checks:
      - contains: 北京
  - id: hello
    messages:
      - {role: user, content: 你好}
    checks:
      - max-chars: 400
"""
SUITE_NAME = "dash <script>alert(1)</script>"


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("dash")
    suite = tmp / "dash.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    db = tmp / "r.db"
    for _ in range(3):
        res = CliRunner().invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "-q", "--db", str(db),
                                        "--out", str(tmp / "rep")])
        assert res.exit_code == 0, res.output
    with Store(db, create=False) as store:
        ids = [r.id for r in store.list_runs(SUITE_NAME, limit=None)]
    assert len(ids) == 3
    return db, ids


@pytest.fixture(scope="module")
def dashboard(history_db: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    db, _ = history_db
    out = tmp_path_factory.mktemp("dash-out") / "history.html"
    res = CliRunner().invoke(main, ["report", "--history", SUITE_NAME, "--db", str(db), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and "dashboard:" in res.output
    return out


def test_one_self_contained_file(dashboard: Path) -> None:
    assert [p.name for p in dashboard.parent.iterdir()] == ["history.html"]
    html = dashboard.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I), "nothing fetched"
    assert "<link" not in html and "@import" not in html and "<script" not in html
    assert "Content-Security-Policy" in html


def test_charts_runs_and_axis(dashboard: Path, history_db: tuple[Path, list[str]]) -> None:
    html = dashboard.read_text(encoding="utf-8")
    for _, title, _, _ in VARIANT_METRICS:
        assert f"<figcaption>{title}</figcaption>" in html.replace("&#39;", "'"), title
    assert html.count("<svg") >= len(VARIANT_METRICS) + 1  # + the temperature chart
    _, ids = history_db
    runs = html[html.index('id="runs"'):]
    assert [m for m in re.findall(r"<code>([^<]+)</code>", runs) if m in ids] == ids, "newest first"
    axes = html[html.index('id="parameters"'):html.index('id="runs"')]
    assert "<h3>temperature</h3>" in axes and "pass rate by temperature" in axes
    assert "temperature=0.2" in axes and "temperature=0.9" in axes
    assert "simulated" in runs and html.count('class="badge sim"') >= 3  # every run here is local
    assert "glm-4 temperature=0.2" in html


def test_suite_text_is_escaped(dashboard: Path) -> None:
    html = dashboard.read_text(encoding="utf-8")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_variant_name_is_escaped(tmp_path: Path) -> None:
    bad = "<script>alert(2)</script>"
    with Store(tmp_path / "r.db") as store:
        for seed in range(3):
            synth_run(store, suite="demo", cases=3, repeats=1, seed=seed, models=("glm-4", bad), local=seed != 1)
        history = load_history_dashboard(store, "demo", runs=2)
    assert len(history.runs) == 2 and history.total_runs == 3
    html = render_dashboard(history)
    assert "<script" not in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "(the latest of 3)" in html and "1 of 2 runs simulated" in html


def test_bad_flags_and_unknown_suite(history_db: tuple[Path, list[str]], tmp_path: Path) -> None:
    db, _ = history_db
    runner = CliRunner()
    res = runner.invoke(main, ["report", "--history", SUITE_NAME, "--format", "md", "--db", str(db)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1 and "--format html" in res.output
    res = runner.invoke(main, ["report", "--history", "nope", "--db", str(db)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "no suite 'nope'" in res.output and SUITE_NAME in res.output
    res = runner.invoke(main, ["report", "latest", "--history", SUITE_NAME, "--db", str(db)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(main, ["report", "--history", SUITE_NAME, "--db", str(db), "--out", "-"])
    assert res.exit_code == 0 and res.output.startswith("<!doctype html>")


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def test_in_headless_chromium(dashboard: Path, tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    profile = tmp_path / "profile"
    shot = tmp_path / "history.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr",
             "--v=0"]
    env = {**os.environ, "HOME": str(profile)}
    proc = subprocess.run([binary, *flags, f"--screenshot={shot}", "--window-size=1280,2400", dashboard.as_uri()],
                          capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert shot.exists() and shot.stat().st_size > 30_000, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Content Security Policy" in line]
    assert not console, console
    dom = subprocess.run([binary, *flags, "--dump-dom", dashboard.as_uri()],
                         capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL).stdout
    assert 'id="runs"' in dom and "<svg" in dom and "<script>alert" not in dom
    keep = os.environ.get("GLMEVAL_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "history.png")
