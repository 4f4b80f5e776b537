"""Benchmark: consolidate and update_csv_atomic against their I/O floors at 1,000, 10,000 and 100,000 jobs
(+2 runs each: tables of 3,000, 30,000 and 300,000 rows), and the hashing of large objects.

Usage: python bench/bench.py [--sizes 1000,10000,100000] [--repeat 3] [--cases consolidate,upsert,hashes]
       [--hash-jobs 20000] [--object-mib 1] [--keep DIR]
Each measurement runs in a fresh subprocess so peak RSS is its own. Each size is measured in
`--repeat` rounds; the tables show medians, because a shared machine's speed varies a lot from one
minute to the next.
- consolidate: the floor (read the table, list state/, list and stat every job folder, write the
  table back atomically), a first run on the table as built, a second (idempotent) run, and
  `archi3d explain` of one completed job (timed after start-up).
- upsert: one row and 1,000 rows (updates of existing keys, one new cell each) against the floor of
  reading the table and writing it back atomically, measured in the same process, alternately.
- hashes: a run of --hash-jobs jobs whose objects are --object-mib MiB each: `sha256sum` over the
  objects consolidate hashes (after one untimed pass, so that both read them from the page cache as
  far as memory holds them), a first run whose table already holds every hash (what a first run
  costs without hashing), a first run that hashes them all, and a second run (which hashes nothing).
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

_AS_BUILT = r"""
import datetime as dt, os, sys
# The clock as the demo was built: its fresh heartbeats stay fresh however long a case takes (they go
# stale after 600 s, and a second run that saw them go stale would change their rows).
expectations = os.path.join(sys.argv[1], "demo-expectations.json")
built = dt.datetime.fromtimestamp(os.stat(expectations).st_mtime, dt.timezone.utc)
"""

_CONSOLIDATE = (
    _AS_BUILT
    + r"""
import time
from archi3d import ConsolidateOptions, consolidate
t = time.perf_counter()
summary = consolidate(sys.argv[1], ConsolidateOptions(run_id=sys.argv[2]), now=built)
print(time.perf_counter() - t, summary.upsert_updated, summary.upsert_inserted, summary.unchanged)
"""
)

_EXPLAIN = (
    _AS_BUILT
    + r"""
import time
from archi3d import ConsolidateOptions
from archi3d.explain import explain
t = time.perf_counter()
explain(sys.argv[1], ConsolidateOptions(run_id=sys.argv[2]), [sys.argv[3]], now=built)
print(time.perf_counter() - t)
"""
)

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

_BIG_OBJECTS = r"""
import os, sys
from pathlib import Path
outputs, size = Path(sys.argv[1]), int(sys.argv[2])
block = os.urandom(size)
for n, path in enumerate(sorted(outputs.rglob("*.glb"))):
    if path.is_file() and not path.is_symlink():
        kept = path.stat()
        path.write_bytes(n.to_bytes(8, "big") + block[8:])
        os.utime(path, ns=(kept.st_atime_ns, kept.st_mtime_ns))  # the rules pick the newest object by time
"""

_RECORD_HASHES = r"""
import sys
from pathlib import Path
import pandas as pd
from archi3d.csvtable import read_csv_table
from archi3d.upsert import update_csv_atomic
hashed, table, listing = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
columns = ["run_id", "job_id", "gen_object_sha256", "gen_object_bytes", "gen_object_path"]
frame = read_csv_table(hashed, columns=columns).cells.to_pandas()
frame = frame[frame["gen_object_sha256"] != ""]
listing.write_bytes(b"\0".join(p.encode() for p in frame["gen_object_path"].unique()))
keys = read_csv_table(table, columns=columns[:2]).cells.to_pandas().drop_duplicates()
known = frame[columns[:4]].drop_duplicates(columns[:2]).merge(keys)  # rows consolidate inserted are left out
update_csv_atomic(table, known, columns[:2])
"""


def _peak_rss(code: str, *args: str, src: Path | None = None) -> tuple[list[str], float]:
    """Run `code` in a fresh Python (importing archi3d from `src`, if given): its output's words and peak RSS."""
    env = None if src is None else {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().split() if proc.stdout else []
    if status != 0:
        raise SystemExit(f"benchmark step failed{'' if src is None else f' ({src})'}")
    return out, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size; the table shows medians")
    parser.add_argument("--cases", default="consolidate,upsert,hashes", help="what to measure (comma-separated)")
    parser.add_argument("--hash-jobs", type=int, default=20_000, help="jobs of the hashes case")
    parser.add_argument("--object-mib", type=float, default=1.0, help="size of each object in the hashes case")
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
        if "hashes" in cases:
            results.append(_hash_rounds(root / "ws-hashes", args.hash_jobs, args.object_mib, args.repeat))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    sized = [r for r in results if "first_s" in r]
    if len(sized) >= 2:
        big, small = sized[-1], sized[-2]
        print(
            f"scaling {big['jobs']:.0f}/{small['jobs']:.0f} jobs: "
            + ", ".join(f"{what} x{big[f'{what}_s'] / small[f'{what}_s']:.1f}" for what in ("first", "second", "floor"))
        )
    print(json.dumps(results))


def _consolidate_rounds(ws: Path, repeat: int) -> dict[str, float]:
    """Each round: the floor, then consolidate on the table as built, twice."""
    table = ws / "tables" / "generations.csv"
    built = table.read_bytes()
    expected = json.loads((ws / "demo-expectations.json").read_text(encoding="utf-8"))
    explained_job = next(job["job_id"] for job in expected if job["in_table"] and job["status"] == "completed")
    floors, firsts, seconds, explains, peak = [], [], [], [], 0.0
    for _ in range(repeat):
        table.write_bytes(built)
        floors.append(float(_peak_rss(_FLOOR, str(ws), "demo-run")[0][0]))
        first, second, rss = _first_and_second(ws)
        firsts.append(first)
        seconds.append(second)
        explains.append(float(_peak_rss(_EXPLAIN, str(ws), "demo-run", explained_job)[0][0]))
        peak = max(peak, rss)
    table.write_bytes(built)
    floor, first, second, explained = (statistics.median(xs) for xs in (floors, firsts, seconds, explains))
    print(
        f"  consolidate: floor {floor:.2f} s, first run {first:.2f} s ({first / floor:.2f}x floor),"
        f" second run {second:.2f} s ({second / floor:.2f}x floor), peak RSS {peak:.0f} MiB;"
        f" explain of one job {explained:.2f} s",
        flush=True,
    )
    return {"floor_s": floor, "first_s": first, "second_s": second, "peak_mib": peak, "explain_s": explained}


def _first_and_second(ws: Path) -> tuple[float, float, float]:
    """Consolidate twice; the times of both runs and their peak RSS. The second must change nothing."""
    first_out, first_rss = _peak_rss(_CONSOLIDATE, str(ws), "demo-run")
    second_out, second_rss = _peak_rss(_CONSOLIDATE, str(ws), "demo-run")
    if second_out[1:3] != ["0", "0"]:
        raise SystemExit(f"second run was not idempotent: {second_out}")
    return float(first_out[0]), float(second_out[0]), max(first_rss, second_rss)


def record_every_hash(ws: Path, src: Path | None = None) -> bytes:
    """Give the demo's table every object hash a first run records (not the rows it would insert), and
    list the hashed objects in `hashed-objects`; returns the table as it was."""
    table = ws / "tables" / "generations.csv"
    built = table.read_bytes()
    _peak_rss(_CONSOLIDATE, str(ws), "demo-run", src=src)
    hashed = ws / "hashed.csv"
    shutil.copyfile(table, hashed)
    table.write_bytes(built)
    _peak_rss(_RECORD_HASHES, str(hashed), str(table), str(ws / "hashed-objects"), src=src)
    return built


def _hash_rounds(ws: Path, jobs: int, object_mib: float, repeat: int) -> dict[str, float]:
    """Each round: sha256sum over the objects, a first run with every hash known, one that hashes all, a second."""
    shutil.rmtree(ws, ignore_errors=True)
    t = time.perf_counter()
    _peak_rss(_BUILD, str(ws), str(jobs))
    _peak_rss(_BIG_OBJECTS, str(ws / "runs" / "demo-run" / "outputs"), str(int(object_mib * 2**20)))
    table, listing = ws / "tables" / "generations.csv", ws / "hashed-objects"
    built = record_every_hash(ws)
    known = table.read_bytes()
    print(f"{jobs} jobs with objects of {object_mib:g} MiB: built in {time.perf_counter() - t:.1f} s", flush=True)

    def sha256sum() -> float:
        t = time.perf_counter()
        with listing.open("rb") as names:
            subprocess.run(["xargs", "-0", "sha256sum"], stdin=names, stdout=subprocess.DEVNULL, check=True, cwd=ws)
        return time.perf_counter() - t

    sha256sum()  # untimed: then both sha256sum and consolidate find the objects in the page cache, as memory allows
    sums, knowns, hashings, seconds = [], [], [], []
    for _ in range(repeat):
        sums.append(sha256sum())
        table.write_bytes(known)
        knowns.append(_first_and_second(ws)[0])
        table.write_bytes(built)
        hashing, second, _ = _first_and_second(ws)
        hashings.append(hashing)
        seconds.append(second)
    shutil.rmtree(ws, ignore_errors=True)
    summed, known_first, hashing, second = (statistics.median(xs) for xs in (sums, knowns, hashings, seconds))
    print(
        f"  hashes: sha256sum {summed:.2f} s, first run with hashes known {known_first:.2f} s,"
        f" first run hashing {hashing:.2f} s ({hashing / (summed + known_first):.2f}x the two),"
        f" second run {second:.2f} s",
        flush=True,
    )
    return {
        "jobs": jobs,
        "sha256sum_s": summed,
        "known_first_s": known_first,
        "hashing_first_s": hashing,
        "hashed_second_s": second,
    }


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
