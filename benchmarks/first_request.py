"""Time to first request: from spawning ``glmeval run`` to its first call arriving at the server.

    python benchmarks/first_request.py                  # 2,000 inline cases, median of 5
    python benchmarks/first_request.py --cases 100000 --csv -n 3

A local GLM server runs in this process; ``glmeval run SUITE --base-url URL`` runs as a child
process (the console script beside this interpreter, or ``--module`` for ``python -m glmeval``).
The time from just before the spawn to the server's arrival time of the first
``/chat/completions`` request (``LocalServer.stats.first_at``) is what a user waits before
anything is sent: interpreter start, imports, reading and validating the whole suite (every
problem is shown before anything is sent) and the first job made. The child is stopped once
that request has arrived. Printed: each time, the median, a bare ``python -c pass`` for the
floor, and the ratio to issue 15's target of 0.3 s. Numbers only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.3
ROUTE = "/chat/completions"


def write_suite(root: Path, cases: int, csv_file: bool) -> Path:
    """A suite of ``cases`` cases of one templated question and one templated check, inline
    YAML (the issue's measurement) or a CSV case file."""
    head = (
        "name: first-request\nmode: sync\nmodel: glm-4-flash\n"
        'messages:\n  - {role: user, content: "What is {{ a }}+{{ b }}?"}\n'
        'checks:\n  - contains: "{{ sum }}"\n'
    )
    suite = root / "suite.yaml"
    if csv_file:
        rows = ["id,a,b,sum", *(f"c{i:06d},{i},{i + 7},{2 * i + 7}" for i in range(cases))]
        (root / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        suite.write_text(head + "cases:\n  - file: cases.csv\n", encoding="utf-8")
    else:
        lines = [f'  - {{id: c{i:06d}, vars: {{a: {i}, b: {i + 7}, sum: "{2 * i + 7}"}}}}' for i in range(cases)]
        suite.write_text(head + "cases:\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return suite


def glmeval_command(module: bool) -> list[str]:
    script = Path(sys.executable).parent / "glmeval"
    if not module and script.exists():
        return [str(script)]
    return [sys.executable, "-m", "glmeval"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHIPU", "GLMEVAL_", "OPENAI_", "ZAI_"))}
    env["ZHIPUAI_API_KEY"] = "first-request.benchmark"  # the server takes any well-formed key
    env["NO_COLOR"] = "1"
    # An installed glmeval starts from cached bytecode; without it every module compiles on
    # every start (the warm-up run writes the cache).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process ``pid`` has used (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def first_request(cmd: list[str], server: object, timeout: float) -> tuple[float, float | None] | None:
    """Seconds from spawn to the first chat request and the CPU seconds the child had used by
    then (on a busy machine the wall time includes waiting for a core, the CPU time does not),
    or None when no request came in ``timeout``."""
    stats = server.stats  # type: ignore[attr-defined]
    stats.reset()
    start = time.monotonic()
    child = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.monotonic() - start < timeout:
            arrived = stats.first_at(ROUTE)
            if arrived is not None:
                return arrived - start, cpu_seconds(child.pid)
            if child.poll() is not None:
                err = child.stderr.read().decode(errors="replace") if child.stderr else ""
                raise SystemExit(f"glmeval exited ({child.returncode}) before its first request:\n{err}")
            time.sleep(0.001)
        return None
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def bare_python(runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.monotonic() - start)
    return statistics.median(times)


BARE_SDK = (
    "import os, sys\n"
    "from zhipuai import ZhipuAI\n"
    "client = ZhipuAI(api_key=os.environ['ZHIPUAI_API_KEY'], base_url=sys.argv[1])\n"
    "client.chat.completions.create(model='glm-4-flash', messages=[{'role': 'user', 'content': 'What is 1+8?'}])\n"
)
"""The floor no tool on the zhipuai SDK can go under: start Python, import the SDK, send one
request. glmeval's time beyond it is what glmeval itself adds before the first call."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--csv", action="store_true", help="cases in a CSV file instead of inline YAML")
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--module", action="store_true", help="run python -m glmeval instead of the console script")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--command", help="the glmeval command to time, e.g. 'env PYTHONPATH=/tmp/old python -m glmeval'")
    args = parser.parse_args()

    from glmeval.simulator import LocalServer

    with tempfile.TemporaryDirectory(prefix="glmeval-first-") as tmp, LocalServer(port=0, fixed_latency_ms=0, api_key=None) as server:
        root = Path(tmp)
        suite = write_suite(root, args.cases, args.csv)
        times: list[float] = []
        cpus: list[float] = []
        for i in range(args.runs + 1):  # the first run warms the file cache and is not counted
            prefix = shlex.split(args.command) if args.command else glmeval_command(args.module)
            cmd = [*prefix, "run", str(suite), "--base-url", server.base_url,
                   "--no-cache", "--no-report", "-q", "-j", "8", "--db", str(root / f"results-{i}.db")]
            took = first_request(cmd, server, args.timeout)
            if took is None:
                raise SystemExit(f"no request within {args.timeout:g} s")
            if i:
                wall, cpu = took
                times.append(wall)
                if cpu is not None:
                    cpus.append(cpu)
                shown = f" ({cpu:.2f} s CPU)" if cpu is not None else ""
                print(f"run {i}: first request after {wall:.3f} s{shown}", flush=True)
        median = statistics.median(times)
        floor = bare_python(args.runs)
        sdk_times = []
        for i in range(args.runs + 1):
            took = first_request([sys.executable, "-c", BARE_SDK, server.base_url], server, args.timeout)
            if took is not None and i:
                sdk_times.append(took[0])
        sdk = statistics.median(sdk_times) if sdk_times else float("nan")
        kind = "CSV" if args.csv else "inline"
        cpu_text = f", {statistics.median(cpus):.3f} s CPU" if cpus else ""
        print(f"{args.cases:,} {kind} cases: first request after {median:.3f} s{cpu_text} (median of {len(times)}); "
              f"python -c pass {floor:.3f} s; {median / TARGET_S:.2f}x the {TARGET_S:g} s target")
        print(f"bare zhipuai script (import, one call): first request after {sdk:.3f} s; glmeval adds {median - sdk:.3f} s "
              f"({median / sdk:.2f}x); the bare script alone is {sdk / TARGET_S:.2f}x the {TARGET_S:g} s target")


if __name__ == "__main__":
    main()
