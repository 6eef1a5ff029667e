"""How long the reports take to render for a large run.

Builds a 10,000-result run in a temporary store from synthesised records (500 cases ×
2 models × 2 temperatures × 5 repeats, three checks each, via ``Store.add_result``), then
times loading the report data and rendering each format. Target: HTML and Markdown each
under 3 s. Run: ``python benchmarks/render.py [--cases N] [--repeats N] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from glmeval.report import load_report_data, renderer
from glmeval.report.demo import synth_run
from glmeval.store import Store

TARGET_S = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the rendered files into this folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        run_id = synth_run(store, suite="bench", cases=args.cases, repeats=args.repeats, seed=7)
        n = store.conn.execute("SELECT COUNT(*) FROM results WHERE run_id = ?", (run_id,)).fetchone()[0]
        print(f"stored {n:,} results in {time.perf_counter() - t0:.2f} s (setup, not part of the timing)")

        t0 = time.perf_counter()
        data = load_report_data(store, run_id)
        load_s = time.perf_counter() - t0
        print(f"load report data   {load_s:6.2f} s")

        worst = 0.0
        for fmt in ("html", "md", "json", "junit"):
            fresh = load_report_data(store, run_id) if fmt in ("html", "md") else data
            t0 = time.perf_counter()
            text = renderer(fmt)(fresh)
            render_s = time.perf_counter() - t0
            total = render_s + (load_s if fmt in ("html", "md") else 0.0)
            if fmt in ("html", "md"):
                worst = max(worst, total)
            print(f"render {fmt:<5}       {render_s:6.2f} s   (+load {total:5.2f} s)   {len(text.encode()) / 1e6:6.2f} MB")
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / f"bench.{fmt}").write_text(text, encoding="utf-8")
        store.close()
    verdict = "OK" if worst < TARGET_S else "SLOW"
    print(f"{verdict}: slowest of HTML/Markdown including load {worst:.2f} s (target < {TARGET_S:.0f} s)")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
