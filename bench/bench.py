"""Benchmark: consolidate against the I/O floor at 1,000, 10,000 and 100,000 jobs (+2 runs each).

Usage: python bench/bench.py [--sizes 1000,10000,100000] [--repeat 3] [--keep DIR]
Each measurement runs in a fresh subprocess so peak RSS is its own. Each size is measured in
`--repeat` rounds (floor, first run on the table as built, second run); the table shows medians,
because a shared machine's speed varies a lot from one minute to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_FLOOR = r"""
import os, sys, time
from pathlib import Path
from archi3d.atomic import write_bytes_atomic
ws, run = Path(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
table = ws / "tables" / "generations.csv"
text = table.read_text(encoding="utf-8-sig")
names = os.listdir(ws / "runs" / run / "state")
outputs = ws / "runs" / run / "outputs"
with os.scandir(outputs) as folders:
    for folder in folders:
        with os.scandir(folder.path) as files:
            for entry in files:
                entry.stat()
write_bytes_atomic(table, ("\ufeff" + text).encode("utf-8"))
print(time.perf_counter() - t)
"""

_CONSOLIDATE = r"""
import sys, time
from archi3d.service import ConsolidateOptions, consolidate
t = time.perf_counter()
summary = consolidate(sys.argv[1], ConsolidateOptions(run_id=sys.argv[2]))
print(time.perf_counter() - t, summary.upsert_updated, summary.upsert_inserted, summary.unchanged)
"""

_BUILD = r"""
import sys
from pathlib import Path
from archi3d.demo import build_demo_workspace
build_demo_workspace(Path(sys.argv[1]), jobs=int(sys.argv[2]), seed=1, other_runs=2, lean=True)
"""


def _peak_rss(code: str, *args: str) -> tuple[list[str], float]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().split() if proc.stdout else []
    if status != 0:
        raise SystemExit("benchmark step failed")
    return out, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size; the table shows medians")
    parser.add_argument("--keep", type=Path, default=None, help="build workspaces here and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="archi3d-bench-"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'jobs':>8} {'rows':>8} {'build s':>8} {'floor s':>8} {'first s':>8} {'x floor':>7}"
          f" {'second s':>8} {'x floor':>7} {'peak MiB':>8}")
    results = []
    try:
        for jobs in (int(s) for s in args.sizes.split(",")):
            ws = root / f"ws-{jobs}"
            shutil.rmtree(ws, ignore_errors=True)
            t = time.perf_counter()
            _peak_rss(_BUILD, str(ws), str(jobs))
            build = time.perf_counter() - t
            table = ws / "tables" / "generations.csv"
            built = table.read_bytes()
            floors, firsts, seconds, peak = [], [], [], 0.0
            for _ in range(args.repeat):  # each round: floor, then consolidate on the table as built, twice
                table.write_bytes(built)
                floors.append(float(_peak_rss(_FLOOR, str(ws), "demo-run")[0][0]))
                first_out, first_rss = _peak_rss(_CONSOLIDATE, str(ws), "demo-run")
                second_out, second_rss = _peak_rss(_CONSOLIDATE, str(ws), "demo-run")
                if second_out[1:3] != ["0", "0"]:
                    raise SystemExit(f"second run was not idempotent: {second_out}")
                firsts.append(float(first_out[0]))
                seconds.append(float(second_out[0]))
                peak = max(peak, first_rss, second_rss)
            floor, first, second = (statistics.median(xs) for xs in (floors, firsts, seconds))
            print(f"{jobs:>8} {jobs * 3:>8} {build:>8.2f} {floor:>8.2f} {first:>8.2f} {first / floor:>7.2f}"
                  f" {second:>8.2f} {second / floor:>7.2f} {peak:>8.0f}", flush=True)
            results.append({"jobs": jobs, "floor_s": floor, "first_s": first, "second_s": second, "peak_mib": peak})
            if args.keep is None:
                shutil.rmtree(ws, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if len(results) >= 2:
        big, small = results[-1], results[-2]
        print(f"scaling {big['jobs']}/{small['jobs']} jobs: "
              + ", ".join(f"{what} x{big[f'{what}_s'] / small[f'{what}_s']:.1f}" for what in ("first", "second", "floor")))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
