"""Start-up time of the ``glmeval`` command, as a user sees it: a process from start to exit.

    python benchmarks/startup.py            # median of 11 runs each
    python benchmarks/startup.py -n 31 --module

Each command runs N times (after one untimed warm-up, so the file cache is warm) and the
median wall time is printed beside that of a bare ``python -c pass``, the floor any Python
command pays, with their ratio. The median CPU time (user + system) of the process is printed
too: on a busy machine wall time includes waiting for a core, CPU time does not. ``--version`` and ``--help`` must not import pandas, numpy or
the SDK (issue 11 wants ``--version`` under 0.25 s); ``validate`` loads the suite machinery
but sends nothing; ``checks`` loads the check registry.

By default the console script installed beside this interpreter runs (not a pyenv shim,
whose own start-up would be counted); ``--module`` runs ``python -m glmeval`` instead.
Numbers only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: list[list[str]] = [
    ["--version"],
    ["--help"],
    ["validate", "suites/greeting.yaml"],
    ["checks"],
]


def glmeval_command(module: bool) -> list[str]:
    """The console script next to ``sys.executable`` when there is one, else ``python -m glmeval``."""
    script = Path(sys.executable).parent / ("glmeval.exe" if os.name == "nt" else "glmeval")
    if not module and script.exists():
        return [str(script)]
    return [sys.executable, "-m", "glmeval"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_seconds(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU time of ``argv`` run to exit, output discarded; a failing command
    stops the benchmark, since timing an error message would measure the wrong thing."""
    wall, cpu = [], []
    for i in range(runs + 1):
        cpu_before = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
        if i:
            wall.append(elapsed)
            cpu.append(_children_cpu() - cpu_before)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=11, help="timed runs per command (median shown)")
    parser.add_argument("--module", action="store_true", help="run `python -m glmeval` instead of the console script")
    args = parser.parse_args()

    base = glmeval_command(args.module)
    bare, bare_cpu = median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"{' '.join(base)}  (median of {args.runs} runs, cwd {ROOT}, load average {os.getloadavg()[0]:.2f})")
    print(f"{'command':<40} {'wall s':>7} {'python -c pass':>15} {'ratio':>6}   {'cpu s':>6} {'(pass)':>6}")
    for extra in COMMANDS:
        seconds, cpu = median_seconds([*base, *extra], args.runs)
        print(
            f"{'glmeval ' + ' '.join(extra):<40} {seconds:>7.3f} {bare:>15.3f} {seconds / bare:>5.1f}x"
            f"   {cpu:>6.3f} {bare_cpu:>6.3f}"
        )
    print("issue 11 target: glmeval --version under 0.250 s wall")


if __name__ == "__main__":
    main()
