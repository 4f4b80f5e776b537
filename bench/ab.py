"""Consolidate of two source trees, alternated on one input: the way to hold a change to a speed guard.

Usage: python bench/ab.py --old OLD_SRC [--new NEW_SRC] [--jobs 10000] [--pairs 6] [--keep DIR]
OLD_SRC is the `src` folder of another checkout (`git worktree add /tmp/old <rev>` gives one). The
demo workspace is built, and its table given every object hash a run records (the hashes case's
method), by the new tree; so a first run of either tree changes the same rows, hashes nothing,
and reads the same bytes, whether or not the old tree knows the hash columns. Each pair runs the
old tree, then the new one: the table as built, a first run, a second run. It prints the medians of
wall time and of CPU time (user + system of all processes, the steadier of the two on a shared
machine), and the main process's peak RSS.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from bench import _AS_BUILT, _BUILD, _peak_rss, record_every_hash

_RUN = (
    _AS_BUILT
    + r"""
import resource, time
from archi3d import ConsolidateOptions, consolidate
usage = lambda: [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
before, t = usage(), time.perf_counter()
summary = consolidate(sys.argv[1], ConsolidateOptions(run_id="demo-run"), now=built)
wall, after = time.perf_counter() - t, usage()
cpu = sum(b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime for a, b in zip(before, after))
print(wall, cpu, after[0].ru_maxrss / 1024, summary.upsert_updated, summary.upsert_inserted)
"""
)


def _input(ws: Path, jobs: int, new: Path) -> bytes:
    """The table of a fresh demo workspace, holding every hash a first run records."""
    _peak_rss(_BUILD, str(ws), str(jobs), src=new)
    record_every_hash(ws, src=new)
    return (ws / "tables" / "generations.csv").read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, required=True, help="the src folder of the code to compare with")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--keep", type=Path, default=None, help="build the workspace here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="archi3d-ab-"))
    ws = root / f"ab-{args.jobs}"
    shutil.rmtree(ws, ignore_errors=True)
    sides = {"old": args.old.resolve(), "new": args.new.resolve()}
    results: dict[str, list[list[float]]] = {side: [] for side in sides}
    try:
        known = _input(ws, args.jobs, sides["new"])
        changes = set()
        for _ in range(args.pairs):
            for side, src in sides.items():
                (ws / "tables" / "generations.csv").write_bytes(known)
                first = _peak_rss(_RUN, str(ws), src=src)[0]
                second = _peak_rss(_RUN, str(ws), src=src)[0]
                if second[3:] != ["0", "0"]:
                    raise SystemExit(f"{side}: the second run changed rows: {second}")
                changes.add(tuple(first[3:]))
                results[side].append([*map(float, first[:3]), *map(float, second[:3])])
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if len(changes) != 1:
        print(f"warning: the two trees changed different rows (updated, inserted): {sorted(changes)}")
    medians = {side: [statistics.median(column) for column in zip(*rows)] for side, rows in results.items()}
    print(f"{args.jobs} jobs, {args.pairs} pairs, medians (old -> new):")
    for at, what in enumerate(("first run", "first run CPU", "first run peak RSS", "second run", "second run CPU")):
        old, new = medians["old"][at], medians["new"][at]
        unit = "MiB" if "RSS" in what else "s"
        print(f"  {what}: {old:.2f} -> {new:.2f} {unit} ({(new / old - 1) * 100:+.0f}%)")


if __name__ == "__main__":
    main()
