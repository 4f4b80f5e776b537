"""The write of a consolidate run: under the table lock, against the file as it is then, as one atomic replace."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from archi3d.atomic import write_bytes_atomic
from archi3d.columns import GENERATIONS_COLUMNS
from archi3d.consolidation.deciding import Outcome, RunContext, decide
from archi3d.consolidation.plan import Plan, check_written, plan_edit, status_histogram
from archi3d.consolidation.selection import JobRows, job_rows
from archi3d.csvtable import CsvTable, read_csv_table, render_chunks
from archi3d.errors import WriteFailedError
from archi3d.lock import table_lock
from archi3d.paths import PathResolver
from archi3d.schema import validate_generations

__all__ = ["write_plan"]


def write_plan(
    resolver: PathResolver,
    run: RunContext,
    plan: Plan,
    jobs: Sequence[str],
    outcomes: Mapping[str, Outcome],
    orphans: Sequence[str],
) -> tuple[Plan, bool]:
    """Write the plan; returns the plan written (made again if the file changed) and whether it was written.

    Under the lock the file is compared with the table as read. A job whose rows still have the same
    bytes keeps its outcome (a pure function of its rows and evidence); a job whose rows another
    writer changed meanwhile is decided again from its new rows, never overwritten with stale values.
    """
    path = resolver.generations_csv_path()
    try:
        resolver.tables_root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteFailedError.of(resolver.tables_root, error, "Nothing was written.") from error
    table = run.table
    with table_lock(path, run.options.lock_timeout):
        base = table if table is not None else CsvTable.empty(path, GENERATIONS_COLUMNS)
        if not _holds(path, table.data if table is not None else None):
            fresh = read_csv_table(path, validate_generations) if path.exists() else None
            base = fresh if fresh is not None else CsvTable.empty(path, GENERATIONS_COLUMNS)
            fresh_groups = job_rows(fresh, run.options.run_id)
            changed = _jobs_rewritten(table, run.groups, fresh, fresh_groups, jobs)
            outcomes = {**outcomes, **decide(attrs.evolve(run, table=fresh, groups=fresh_groups), changed)}
            before = status_histogram(base, fresh_groups, jobs)
            plan = plan_edit(base, fresh_groups, jobs, outcomes, run.manifest, orphans, before)
            check_written(plan, path)
            if not plan.changes_the_table:
                return plan, False
        chunks = render_chunks(base, plan.replaced, plan.appended, plan.added_columns)
        write_bytes_atomic(path, chunks, replace_timeout=run.options.lock_timeout)
    return plan, True


def _jobs_rewritten(
    table: CsvTable | None,
    groups: JobRows,
    fresh: CsvTable | None,
    fresh_groups: JobRows,
    jobs: Sequence[str],
) -> list[str]:
    """The jobs whose rows are not byte for byte what they were (all of them if the header changed)."""
    if table is None or fresh is None or fresh.header != table.header:
        return list(jobs)

    def rows_bytes(source: CsvTable, of: JobRows, job_id: str) -> list[bytes]:
        return [source.raw(i) for i in of.get(job_id, ())]

    return [j for j in jobs if rows_bytes(fresh, fresh_groups, j) != rows_bytes(table, groups, j)]


def _holds(path: Path, data: bytes | None) -> bool:
    """Whether the file holds exactly `data` (None: there is no file), read piece by piece."""
    if data is None:
        return not path.exists()
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size != len(data):
                return False
            for at in range(0, len(data), 1 << 22):
                # bytes against bytes is one memcmp (against a memoryview, a comparison per byte)
                if handle.read(1 << 22) != data[at : at + (1 << 22)]:
                    return False
            return not handle.read(1)
    except FileNotFoundError:
        return False
