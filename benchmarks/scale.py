"""A big run end to end, as a user sees it: peak memory, wall time and report sizes.

    python benchmarks/scale.py                    # 100,000 jobs: 100,000 CSV rows x 1 model
    python benchmarks/scale.py --n 50000 --variants 2
    python benchmarks/scale.py --n 5000 --keep /tmp/scale
    python benchmarks/scale.py --gate              # and a second run gated against the first

Builds a suite in a temporary folder whose cases come from an ``--n``-row CSV (one message
with ``{{ q }}``, one ``contains`` check that about half the local server's answers pass),
first times ``glmeval validate SUITE`` as its own process (issue 15: under 3 s at 100,000 rows),
then runs ``glmeval run SUITE --local --local-speed 0 -j 64`` as its own process and reads
that process's peak RSS from ``os.wait4`` (``ru_maxrss``: the whole process, the local
server's threads and the reports included). Then ``glmeval report RUN --format html --format
md`` on the stored run, measured the same way. Prints each figure beside its target from
issue 15 (peak RSS under 300 MB, report.html under 10 MB, report.md within a GitHub comment's
65,536 characters) with the ratio. Numbers only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RSS_TARGET_MB = 300.0
VALIDATE_TARGET_S = 3.0
HTML_TARGET_MB = 10.0
MD_TARGET_CHARS = 65_536
MODELS = ["glm-4-flash", "glm-4-air", "glm-4-plus", "glm-4-long"]


def glmeval_command() -> list[str]:
    """The console script next to ``sys.executable`` when there is one, else ``python -m glmeval``."""
    script = Path(sys.executable).parent / ("glmeval.exe" if os.name == "nt" else "glmeval")
    return [str(script)] if script.exists() else [sys.executable, "-m", "glmeval"]


def write_suite(folder: Path, n: int, variants: int) -> Path:
    """``n`` CSV cases and a suite over ``variants`` models (one variant each)."""
    with (folder / "cases.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "q"])
        for i in range(n):
            writer.writerow([f"c{i:06d}", f"What is {i} plus {i % 7}? Answer with the number."])
    models = ", ".join(MODELS[: max(1, min(variants, len(MODELS)))])
    suite = folder / "scale.yaml"
    suite.write_text(
        "name: scale\n"
        f"grid:\n  model: [{models}]\n"
        "messages:\n  - {role: user, content: \"{{ q }}\"}\n"
        "checks:\n  - {type: contains, value: \"1\"}\n"
        "cases:\n  - {file: cases.csv}\n",
        encoding="utf-8",
    )
    return suite


def measure(argv: list[str], cwd: Path, log: Path) -> tuple[int, float, float]:
    """Run ``argv`` to exit: (exit code, wall seconds, peak RSS in MB of that process)."""
    start = time.perf_counter()
    with log.open("wb") as out:
        # An installed glmeval starts from cached bytecode, as a user's does.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 1024 / 1024
    return proc.returncode, wall, rss_mb


def _ratio(value: float, target: float, unit: str) -> str:
    verdict = "ok" if value < target else "OVER"
    return f"{value:10,.1f} {unit:<6} target < {target:,.0f} {unit}  ({value / target:5.2f}x, {verdict})"


def report(label: str, folder: Path, rc: int, wall: float, rss: float) -> None:
    print(f"{label}: exit {rc}, wall {wall:.1f} s")
    print(f"  peak RSS    {_ratio(rss, RSS_TARGET_MB, 'MB')}")
    html, md = next(folder.rglob("report.html"), None), next(folder.rglob("report.md"), None)
    if html is not None:
        print(f"  report.html {_ratio(html.stat().st_size / 1e6, HTML_TARGET_MB, 'MB')}")
    if md is not None:
        chars = len(md.read_text(encoding="utf-8"))
        print(f"  report.md   {_ratio(chars, MD_TARGET_CHARS, 'chars')}")
    for name in ("results.csv", "results.jsonl"):
        export = next(folder.rglob(name), None)
        if export is not None:
            print(f"  {name:<13} {export.stat().st_size / 1e6:8.1f} MB (the full data, linked from the report)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="CSV rows (cases)")
    parser.add_argument("--variants", type=int, default=1, help="models in the grid (1-4); jobs = n x variants")
    parser.add_argument("-j", "--concurrency", type=int, default=64)
    parser.add_argument("--keep", type=Path, help="build and run in this folder (kept) instead of a temporary one")
    parser.add_argument("--gate", action="store_true",
                        help="then run the suite again with --baseline latest --fail-on: the comparison of two big runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        suite = write_suite(folder, args.n, args.variants)
        cmd = glmeval_command()
        jobs = args.n * max(1, min(args.variants, len(MODELS)))
        print(f"{jobs:,} jobs ({args.n:,} CSV rows x {max(1, min(args.variants, len(MODELS)))} variant(s)) in {folder}")
        rc, wall, rss = measure([*cmd, "validate", str(suite)], folder, folder / "validate.log")
        print(f"glmeval validate: exit {rc}")
        print(f"  wall        {_ratio(wall, VALIDATE_TARGET_S, 's')}")
        print(f"  peak RSS    {rss:10,.1f} MB")
        run_out = folder / "reports-run"
        rc, wall, rss = measure(
            [*cmd, "run", str(suite), "--local", "--local-speed", "0", "-j", str(args.concurrency), "-q",
             "--db", str(folder / "results.db"), "--out", str(run_out)],
            folder, folder / "run.log",
        )
        report("glmeval run", run_out, rc, wall, rss)
        if rc not in (0, 1):
            print((folder / "run.log").read_text(encoding="utf-8", errors="replace")[-2000:])
            return 0
        rep_out = folder / "reports-report"
        rc, wall, rss = measure(
            [*cmd, "report", "latest", "--format", "html", "--format", "md", "--db", str(folder / "results.db"),
             "--out", str(rep_out) + "/"],
            folder, folder / "report.log",
        )
        report("glmeval report latest", rep_out, rc, wall, rss)
        if args.gate:
            gate_out = folder / "reports-gate"
            rc, wall, rss = measure(
                [*cmd, "run", str(suite), "--local", "--local-speed", "0", "-j", str(args.concurrency), "-q",
                 "--db", str(folder / "results.db"), "--out", str(gate_out),
                 "--baseline", "latest", "--fail-on", "regression", "--fail-on", "pass-rate<0.1"],
                folder, folder / "gate.log",
            )
            report("glmeval run --baseline latest --fail-on ...", gate_out, rc, wall, rss)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
