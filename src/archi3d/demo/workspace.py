"""The demo workspace: `build_demo_workspace` and the writers of its tables, manifests, log and fresh heartbeats."""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path

import attrs

from archi3d.columns import MANIFEST_COLUMNS
from archi3d.demo.builder import WRITING_JOBS, Builder
from archi3d.demo.expectations import EXPECTATIONS_FILE, Expectation, write_expectations
from archi3d.demo.jobs import TABLE_COLUMNS, IdSource, Record, iso
from archi3d.demo.runs import build_main_run, build_other_run, interleave
from archi3d.formats import UTC
from archi3d.paths import validate_id
from archi3d.progress import Progress

__all__ = ["DEFAULT_NOW", "DemoWorkspace", "build_demo_workspace"]

DEFAULT_NOW = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


@attrs.frozen
class DemoWorkspace:
    """A built demo workspace and what consolidating its main run should yield."""

    workspace: Path
    run_id: str
    other_run_id: str
    expectations: tuple[Expectation, ...]


def _write_csv(path: Path, columns: Sequence[str], records: Sequence[Record], encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(records)


def _write_worker_log(path: Path, lines: list[tuple[dt.datetime, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(lines, key=lambda line: line[0])
    path.write_text("".join(f"{text}\n" for _, text in ordered), encoding="utf-8")


def _write_fresh_markers(workspace: Path, markers: Sequence[tuple[str, int]]) -> None:
    for relative, pid in markers:
        path = workspace / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"timestamp: {iso(dt.datetime.now(UTC))}\npid: {pid}\n", encoding="utf-8")


def _check_empty(workspace: Path) -> None:
    if workspace.exists() and any(workspace.iterdir()):
        raise FileExistsError(f"{workspace}: folder is not empty; the demo workspace needs a new or empty folder")


def build_demo_workspace(
    workspace: Path,
    jobs: int = 200,
    seed: int = 0,
    *,
    other_runs: int = 1,
    run_id: str = "demo-run",
    now: dt.datetime | None = None,
    lean: bool = False,
    progress: Progress | None = None,
) -> DemoWorkspace:
    """Build a workspace whose run `run_id` holds `jobs` jobs covering every situation, plus `other_runs` runs.

    Everything depends only on the arguments, except the fresh heartbeats, which carry the real current time.
    `now` (default DEFAULT_NOW) is the base of every other timestamp and must lie in the past, or stale
    heartbeats would not be stale. `lean` leaves previews and markers out of the other runs.
    `progress(phase, done, total)` is told how many jobs are written.
    """
    validate_id(run_id, "run_id")
    other_run_ids = [validate_id(f"{run_id}-{n}", "run_id") for n in range(2, other_runs + 2)]
    _check_empty(workspace)
    rng = random.Random(seed)
    expected = jobs * (1 + other_runs)
    b = Builder(workspace, rng, now or DEFAULT_NOW, IdSource(rng), progress=progress, jobs_expected=expected)
    blocks = [build_main_run(b, run_id, jobs)]
    blocks += [build_other_run(b, other, jobs, lean) for other in other_run_ids]
    _write_csv(
        workspace / "tables" / "generations.csv", TABLE_COLUMNS, interleave(blocks, max(1, jobs // 8)), "utf-8-sig"
    )
    for run, manifest_rows in b.manifests.items():
        _write_csv(workspace / "runs" / run / "manifest.csv", MANIFEST_COLUMNS, manifest_rows, "utf-8")
    _write_worker_log(workspace / "logs" / "worker.log", b.log_lines)
    write_expectations(workspace / EXPECTATIONS_FILE, b.expectations)
    _write_fresh_markers(workspace, b.fresh_markers)
    if progress is not None:
        progress(WRITING_JOBS, b.jobs_expected, b.jobs_expected)
    return DemoWorkspace(workspace, run_id, other_run_ids[0] if other_run_ids else "", tuple(b.expectations))
