"""Benchmark: consolidate and update_csv_atomic against their I/O floors at 1,000, 10,000 and 100,000 jobs
(+2 runs each: tables of 3,000, 30,000 and 300,000 rows).

Usage: python bench/bench.py [--sizes 1000,10000,100000] [--repeat 3] [--cases consolidate,upsert] [--keep DIR]
Each measurement runs in a fresh subprocess so peak RSS is its own. Each size is measured in
`--repeat` rounds; the tables show medians, because a shared machine's speed varies a lot from one
minute to the next.
- consolidate: the floor (read the table, list state/, list and stat every job folder, write the
  table back atomically), a first run on the table as built, and a second (idempotent) run.
- upsert: one row and 1,000 rows (updates of existing keys, one new cell each) against the floor of
  reading the table and writing it back atomically, measured in the same process, alternately.
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
from archi3d import ConsolidateOptions, consolidate
t = time.perf_counter()
summary = consolidate(sys.argv[1], ConsolidateOptions(run_id=sys.argv[2]))
print(time.perf_counter() - t, summary.upsert_updated, summary.upsert_inserted, summary.unchanged)
"""

_UPSERT = r"""
import random, sys, time
from pathlib import Path
import pandas as pd
from archi3d.atomic import write_bytes_atomic
from archi3d.csvtable import read_csv_table
from archi3d.upsert import update_csv_atomic
table, count = Path(sys.argv[1]), int(sys.argv[2])
keys = read_csv_table(table, columns=["run_id", "job_id"])
picked = random.Random(count).sample(range(len(keys)), count)
runs, jobs = keys.column("run_id"), keys.column("job_id")
frame = pd.DataFrame({"run_id": [runs[i] for i in picked], "job_id": [jobs[i] for i in picked],
                      "fscore": [f"{random.random():.4f}" for _ in picked]}, dtype="str")
del keys, runs, jobs
t = time.perf_counter()
write_bytes_atomic(table, table.read_bytes())
floor = time.perf_counter() - t
t = time.perf_counter()
update_csv_atomic(table, frame, ["run_id", "job_id"])
print(floor, time.perf_counter() - t)
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
    parser.add_argument("--cases", default="consolidate,upsert", help="what to measure: consolidate, upsert or both")
    parser.add_argument("--keep", type=Path, default=None, help="build workspaces here and keep them")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    root = args.keep or Path(tempfile.mkdtemp(prefix="archi3d-bench-"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    results: list[dict[str, float]] = []
    try:
        for jobs in (int(s) for s in args.sizes.split(",")):
            ws = root / f"ws-{jobs}"
            shutil.rmtree(ws, ignore_errors=True)
            t = time.perf_counter()
            _peak_rss(_BUILD, str(ws), str(jobs))
            print(f"{jobs} jobs ({jobs * 3} rows): built in {time.perf_counter() - t:.1f} s", flush=True)
            result: dict[str, float] = {"jobs": jobs}
            if "consolidate" in cases:
                result |= _consolidate_rounds(ws, args.repeat)
            if "upsert" in cases:
                result |= _upsert_rounds(ws, args.repeat)
            results.append(result)
            if args.keep is None:
                shutil.rmtree(ws, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if len(results) >= 2 and "consolidate" in cases:
        big, small = results[-1], results[-2]
        print(
            f"scaling {big['jobs']:.0f}/{small['jobs']:.0f} jobs: "
            + ", ".join(f"{what} x{big[f'{what}_s'] / small[f'{what}_s']:.1f}" for what in ("first", "second", "floor"))
        )
    print(json.dumps(results))


def _consolidate_rounds(ws: Path, repeat: int) -> dict[str, float]:
    """Each round: the floor, then consolidate on the table as built, twice."""
    table = ws / "tables" / "generations.csv"
    built = table.read_bytes()
    floors, firsts, seconds, peak = [], [], [], 0.0
    for _ in range(repeat):
        table.write_bytes(built)
        floors.append(float(_peak_rss(_FLOOR, str(ws), "demo-run")[0][0]))
        first_out, first_rss = _peak_rss(_CONSOLIDATE, str(ws), "demo-run")
        second_out, second_rss = _peak_rss(_CONSOLIDATE, str(ws), "demo-run")
        if second_out[1:3] != ["0", "0"]:
            raise SystemExit(f"second run was not idempotent: {second_out}")
        firsts.append(float(first_out[0]))
        seconds.append(float(second_out[0]))
        peak = max(peak, first_rss, second_rss)
    table.write_bytes(built)
    floor, first, second = (statistics.median(xs) for xs in (floors, firsts, seconds))
    print(
        f"  consolidate: floor {floor:.2f} s, first run {first:.2f} s ({first / floor:.2f}x floor),"
        f" second run {second:.2f} s ({second / floor:.2f}x floor), peak RSS {peak:.0f} MiB",
        flush=True,
    )
    return {"floor_s": floor, "first_s": first, "second_s": second, "peak_mib": peak}


def _upsert_rounds(ws: Path, repeat: int) -> dict[str, float]:
    """Each round: read-and-rewrite the table, then upsert into it (1 row, then 1,000 rows)."""
    table = str(ws / "tables" / "generations.csv")
    result: dict[str, float] = {}
    for count in (1, 1000):
        rounds = [tuple(map(float, _peak_rss(_UPSERT, table, str(count))[0])) for _ in range(repeat)]
        floor, upsert = (statistics.median(xs) for xs in zip(*rounds))
        print(
            f"  upsert of {count} rows: {upsert:.3f} s against a read-and-rewrite floor of {floor:.3f} s"
            f" ({upsert / floor:.2f}x)",
            flush=True,
        )
        result |= {f"upsert_{count}_floor_s": floor, f"upsert_{count}_s": upsert}
    return result


if __name__ == "__main__":
    main()
