"""The demo's runs: the main run, one job per situation slot, and the other runs consolidate must leave alone."""

from __future__ import annotations

from collections.abc import Sequence

from archi3d.demo.builder import Builder
from archi3d.demo.jobs import Job, Record, completed_row, table_record
from archi3d.demo.situation_writers import WRITERS
from archi3d.demo.situations import OUTSIDE_MANIFEST, situation_counts

__all__ = ["build_main_run", "build_other_run", "interleave"]


def build_main_run(b: Builder, run_id: str, jobs: int) -> list[Record]:
    slots = [name for name, count in situation_counts(jobs).items() for _ in range(count)]
    b.rng.shuffle(slots)
    seen: dict[str, int] = {}
    for situation in slots:
        nth = seen.get(situation, 0)
        seen[situation] = nth + 1
        job = _main_run_job(b, run_id, situation, nth)
        b.situation = situation
        WRITERS[situation](b, job, nth)
        if situation not in OUTSIDE_MANIFEST:
            b.add_manifest(job)
    main_rows = b.rows + b.late_rows
    b.rows, b.late_rows = [], []
    return main_rows


def _main_run_job(b: Builder, run_id: str, situation: str, nth: int) -> Job:
    if situation != "numeric_looking_ids":
        return b.new_job(run_id)
    return b.new_job(run_id, b.ids.numeric_looking_id(nth), product_id="00123" if nth == 0 else "")


def build_other_run(b: Builder, run_id: str, jobs: int, lean: bool) -> list[Record]:
    """A run consolidate must not touch: every job completed, its files present, later phases already scored."""
    rows: list[Record] = []
    for nth in range(jobs):
        job = b.new_job(run_id)
        obj = b.object_file(job.generated_object, job.end)
        previews: list[str] = []
        if not lean:
            previews = b.previews(job, 1 + nth % 3)
            b.marker(job, "completed", job.end)
        row = completed_row(job, obj, previews)
        row.update(
            fscore=f"{b.rng.uniform(0.3, 0.95):.4f}",
            fscore_status="ok",
            vf_status="ok",
            vfscore_overall=f"{b.rng.uniform(3.0, 9.0):.2f}",
        )
        rows.append(table_record(row))
        b.add_manifest(job)
    return rows


def interleave(blocks: Sequence[list[Record]], chunk: int) -> list[Record]:
    """Runs' rows in alternating chunks, as runs sharing one table over time would leave them."""
    merged: list[Record] = []
    for start in range(0, max(len(block) for block in blocks), chunk):
        for block in blocks:
            merged.extend(block[start : start + chunk])
    return merged
