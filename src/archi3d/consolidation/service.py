"""consolidate(): read the table and the run's evidence, decide every job, write the edit, log the summary."""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs

from archi3d.atomic import append_log_record
from archi3d.columns import GENERATIONS_COLUMNS
from archi3d.consolidation.deciding import RunContext
from archi3d.consolidation.options import ConsolidateOptions
from archi3d.consolidation.parallel import decide_all
from archi3d.consolidation.plan import Plan, check_written, plan_edit, status_histogram
from archi3d.consolidation.report import report_records, write_report
from archi3d.consolidation.selection import JobRows, job_rows, orphans, select_jobs
from archi3d.consolidation.summary import Summary
from archi3d.consolidation.write import write_plan
from archi3d.csvtable import CsvTable, read_csv_table, release_unused_memory
from archi3d.errors import Archi3dError, InputError, StrictConflictError, UnknownRunError, WriteFailedError
from archi3d.formats import UTC
from archi3d.manifest import Manifest
from archi3d.paths import PathResolver, validate_id
from archi3d.progress import Progress
from archi3d.scan import RunScanner
from archi3d.schema import validate_generations

__all__ = ["READING", "WRITING", "consolidate"]

READING = "reading the table and the run's folders"
WRITING = "writing the table"


def consolidate(
    workspace: str | os.PathLike[str] | PathResolver | None,
    options: ConsolidateOptions,
    *,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Reconcile one run's on-disk evidence with tables/generations.csv; returns the summary record.

    `now` decides which heartbeats are stale (default: the clock); `progress(phase, done, total)` is
    told each phase (reading, deciding jobs, writing), and how many rows of `considered` are decided.
    Raises InputError (bad input, exit 2), StrictConflictError (exit 1), LockTimeoutError,
    ReplaceRefusedError or WriteFailedError (exit 3).
    """
    try:
        return _consolidate(workspace, options, now or dt.datetime.now(UTC), progress)
    except Archi3dError:
        raise
    except OSError as error:  # e.g. a file that cannot be read: bad input, never a traceback
        raise InputError(f"{error.filename or 'workspace'}: {error.strerror or error}") from error


def _consolidate(
    workspace: str | os.PathLike[str] | PathResolver | None,
    options: ConsolidateOptions,
    now: dt.datetime,
    progress: Progress | None,
) -> Summary:
    started = time.monotonic()
    resolver = workspace if isinstance(workspace, PathResolver) else PathResolver(workspace)
    run_id = validate_id(options.run_id, "run_id")
    resolver.check_layout(run_id)
    log_path = resolver.metrics_log_path()
    if os.path.lexists(log_path) and not log_path.is_file():
        raise InputError(f"{log_path}: is not a regular file, so the summary cannot be logged. Nothing was changed.")
    csv_path = resolver.generations_csv_path()
    if options.report is not None:
        _check_report_path(options.report, (csv_path, resolver.generations_lock_path(), log_path))
    if progress is not None:
        progress(READING, 0, 0)
    with ThreadPoolExecutor(1) as beside:
        # Parsing the table leaves the GIL to arrow's threads: the manifest and the listings are read meanwhile.
        inputs = beside.submit(lambda: (Manifest.read(resolver, run_id), RunScanner(resolver, run_id)))
        table = read_csv_table(csv_path) if csv_path.exists() else None  # validated below, while jobs are decided
        manifest, scanner = inputs.result()
    groups = job_rows(table, run_id)
    if not resolver.run_root(run_id).is_dir():
        _refuse_unknown_run(resolver, table, sum(map(len, groups.values())), run_id)
    base = table if table is not None else CsvTable.empty(csv_path, GENERATIONS_COLUMNS)
    jobs = select_jobs(groups, base, manifest, options)
    run = RunContext(table, groups, manifest, scanner, options, now)

    checks = functools.partial(_validate_and_find_orphans, table, base, groups, manifest, scanner)
    outcomes, found_orphans = decide_all(run, jobs, checks, progress)
    del checks
    before = status_histogram(base, groups, jobs)
    # From here on the table's bytes and layout are enough (a re-plan reads the file afresh): its cells go.
    base = base.without_cells()
    run = attrs.evolve(run, table=base if table is not None else None)
    del table
    release_unused_memory()
    plan = plan_edit(base, groups, jobs, outcomes, manifest, found_orphans, before)
    check_written(plan, csv_path)
    written = False
    if options.strict and plan.conflicts:
        _report(options, plan, jobs, written, now)
        result = _summary(options, plan, written, now, started)
        append_log_record(log_path, result.to_record())
        raise StrictConflictError(f"--strict: {len(plan.conflicts)} conflicts found; nothing was written", result)
    if not options.dry_run and plan.changes_the_table:
        if progress is not None:
            progress(WRITING, 0, 0)
        plan, written = write_plan(resolver, run, plan, jobs, outcomes, found_orphans)
    result = _summary(options, plan, written, now, started)
    failed: list[WriteFailedError] = []
    report = functools.partial(_report, options, plan, jobs, written, now)
    for record in (report, functools.partial(append_log_record, log_path, result.to_record())):
        try:
            record()
        except WriteFailedError as error:
            if not written:
                raise
            failed.append(error)
    if failed:
        raise WriteFailedError(
            f"{csv_path} was written ({result.upsert_inserted} rows inserted, {result.upsert_updated} updated),"
            f" but not all of its records (report, metrics.log): {'; '.join(map(str, failed))}",
            failed[0],
        ) from failed[0]
    return result


def _validate_and_find_orphans(
    table: CsvTable | None, base: CsvTable, groups: JobRows, manifest: Manifest, scanner: RunScanner
) -> tuple[str, ...]:
    """What is checked while jobs are decided: the whole table against the schema, and the run's orphans."""
    if table is not None:
        validate_generations(table)
    return orphans(scanner, base, groups, manifest)


def _refuse_unknown_run(resolver: PathResolver, table: CsvTable | None, rows: int, run_id: str) -> None:
    csv_path = resolver.generations_csv_path()
    if table is not None:
        validate_generations(table)  # a broken table is the first thing to tell
    if rows:
        raise UnknownRunError(
            f"{resolver.run_root(run_id)}: folder missing while {csv_path} has {rows} rows of run {run_id!r};"
            " with no evidence at all every completed job would be downgraded. Nothing was changed."
        )
    raise UnknownRunError(f"unknown run {run_id!r}: no row in {csv_path}, no {resolver.run_root(run_id)} folder")


def _check_report_path(report: str, taken: Sequence[Path]) -> None:
    """Refuse, before any work, a folder, or one of `taken` (the report would replace it)."""
    path = Path(report)
    if path.is_dir():
        raise InputError(f"--report {report}: is a folder; give a file name. Nothing was changed.")
    if path.resolve() in {t.resolve() for t in taken}:
        raise InputError(f"--report {report}: is one of the workspace's own files. Nothing was changed.")


def _report(options: ConsolidateOptions, plan: Plan, jobs: Sequence[str], written: bool, now: dt.datetime) -> None:
    if options.report is not None:
        head = {
            "run_id": options.run_id,
            "timestamp": now.isoformat(),
            "dry_run": options.dry_run,
            "written": written,
            "table": str(plan.table.path),
        }
        write_report(options.report, report_records(plan, jobs, head))


def _summary(options: ConsolidateOptions, plan: Plan, written: bool, now: dt.datetime, started: float) -> Summary:
    return Summary(
        **attrs.asdict(plan.counts),
        run_id=options.run_id,
        dry_run=options.dry_run,
        strict=options.strict,
        written=written,
        status_histogram_before=dict(sorted(plan.before.items())),
        status_histogram_after=dict(sorted(plan.after.items())),
        conflicts=tuple(plan.conflicts),
        timestamp=now.isoformat(),
        elapsed_s=round(time.monotonic() - started, 3),
        report=options.report,
    )
