"""Which jobs of the table and the manifest a consolidate run considers, and their rows."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from archi3d.consolidation.options import ConsolidateOptions
from archi3d.csvtable import CsvTable
from archi3d.manifest import Manifest
from archi3d.model import Status
from archi3d.scan import RunScanner

__all__ = ["JobRows", "considered_rows", "job_rows", "orphans", "select_jobs"]


JobRows = Mapping[str, tuple[int, ...]]
"""The row indices of each job of a run in the table, jobs and rows in file order."""


def job_rows(table: CsvTable | None, run_id: str, only: Collection[str] | None = None) -> JobRows:
    """Row indices of each job of the run (of the jobs in `only`, if given), jobs in file order."""
    # Tuples of ints, which the collector stops tracking (it would look at 100,000 lists at every collection).
    groups: dict[str, tuple[int, ...]] = {}
    if table is not None and len(table):
        hits = table.rows_where("run_id", run_id)
        for index, job_id in zip(hits, table.columns(hits, ("job_id",))["job_id"]):
            if only is None or job_id in only:
                groups[job_id] = (*groups.get(job_id, ()), index)
    return groups


def select_jobs(groups: JobRows, table: CsvTable, manifest: Manifest, options: ConsolidateOptions) -> list[str]:
    """Jobs considered: CSV jobs in file order, then manifest-only ones; --only-status and --max-rows.

    A duplicate group is selected whole if any of its rows is; a manifest-only job counts as enqueued.
    """
    wanted = None if options.only_status is None else {s.value for s in options.only_status}
    statuses = table.column("status") if wanted is not None else []
    chosen = [j for j, rows in groups.items() if wanted is None or any(statuses[i] in wanted for i in rows)]
    if wanted is None or Status.ENQUEUED.value in wanted:
        chosen += [j for j in manifest if j not in groups]
    return chosen if options.max_rows is None else chosen[: max(options.max_rows, 0)]


def considered_rows(groups: JobRows, jobs: Iterable[str]) -> int:
    """What the summary's `considered` counts for these jobs: each row of a CSV job, and each manifest-only job."""
    return sum(max(len(groups.get(job_id, ())), 1) for job_id in jobs)


def orphans(scanner: RunScanner, table: CsvTable, groups: JobRows, manifest: Manifest) -> tuple[str, ...]:
    """Jobs with outputs or markers that neither the CSV nor the manifest knows.

    Folders that the run's rows point into (old layouts: outputs/<algo>/) are not orphans.
    """
    unknown = scanner.job_ids_on_disk() - groups.keys() - manifest.job_ids
    if unknown:
        indices = [i for rows in groups.values() for i in rows]
        unknown -= table.folders_under(
            indices, ("gen_object_path", "preview_1_path", "preview_2_path", "preview_3_path"),
            f"runs/{scanner.run_id}/outputs/",
        )  # fmt: skip
    return tuple(sorted(unknown))
