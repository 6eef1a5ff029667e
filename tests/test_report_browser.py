"""The HTML report in a real browser: headless Chromium renders it, runs its script, and we
read the DOM it ends up with and a screenshot of it.

Skips cleanly when Chromium is not installed (``.ci/run`` installs Debian's package).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from glmeval.report import write_reports
from glmeval.report.demo import synth_run
from glmeval.store import Store

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
]


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _browser(binary: str, profile: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(profile)}  # keep Chromium's caches out of the real home
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    with Store(tmp / "results.db") as store:
        synth_run(store, cases=6, repeats=2, seed=1)
        run = synth_run(store, cases=6, repeats=2, seed=2, outputs={"xss": "<script>alert(1)</script><b>bold</b>"})
        [html] = write_reports(store, run, tmp / "out", ("html",), step_summary=False)
    return html


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return binary


def test_rendered_dom_has_summary_matrix_and_chart(report: Path, chromium: str, tmp_path: Path) -> None:
    proc = _browser(chromium, tmp_path / "profile", "--dump-dom", report.as_uri())
    dom = proc.stdout
    assert proc.returncode == 0 and "</html>" in dom, proc.stderr[-2000:]
    assert 'id="summary-table"' in dom and "glm-4" in dom
    assert 'id="matrix-table"' in dom and 'class="c c-' in dom
    assert "<svg" in dom and "<rect" in dom, "inline SVG charts"
    assert 'id="match-count">6 cases<' in dom, "the report's script ran (it fills in the case count)"
    assert "<script>alert" not in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom, "model output stayed text"
    assert "<b>bold</b>" not in dom


def test_screenshot(report: Path, chromium: str, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    proc = _browser(chromium, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    assert shot.exists(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000, "a blank page compresses to a few kB; the report does not"
    keep = os.environ.get("GLMEVAL_SCREENSHOT_DIR")
    if keep:  # to look at it: GLMEVAL_SCREENSHOT_DIR=/tmp/shots pytest tests/test_report_browser.py
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
