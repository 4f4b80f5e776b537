"""The consolidate service (I/O around the pure reconciler): read, select, scan, reconcile, then merge and write under the table lock."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pandas as pd

from archi3d.atomic import DEFAULT_LOCK_TIMEOUT, append_log_record, table_lock, write_bytes_atomic
from archi3d.columns import GENERATIONS_COLUMNS, PREVIEW_COLUMNS
from archi3d.csvtable import CsvTable, encode_row, read_csv_table, render_table
from archi3d.errors import InputError, StrictConflictError, UnknownRunError
from archi3d.model import Evidence, GenerationRow, Job, Status
from archi3d.paths import PathResolver, to_posix, validate_id
from archi3d.reconcile import Conflict, Options, StalePolicy, merge_duplicates, merge_winner, reconcile
from archi3d.scan import Progress, Recorded, RunScanner
from archi3d.schema import GENERATIONS_SCHEMA, check_frame, validate_generations, validate_manifest

__all__ = ["ConsolidateOptions", "Summary", "consolidate", "read_manifest"]

UTC = dt.timezone.utc
MAX_CONFLICTS = 100


@attrs.frozen
class ConsolidateOptions:
    run_id: str
    dry_run: bool = False
    strict: bool = False
    only_status: frozenset[Status] | None = None
    fix_status: bool = True
    max_rows: int | None = None
    heartbeat_timeout: float = 600.0
    stale_policy: StalePolicy = StalePolicy.REQUEUE
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT

    @property
    def reconcile_options(self) -> Options:
        return Options(self.fix_status, self.heartbeat_timeout, self.stale_policy)


@attrs.frozen
class Summary:
    """The record consolidate appends to logs/metrics.log (and returns)."""

    run_id: str
    dry_run: bool
    strict: bool
    written: bool
    considered: int
    upsert_inserted: int
    upsert_updated: int
    unchanged: int
    duplicate_rows_merged: int
    conflicts_resolved: int
    marker_mismatches_fixed: int
    downgraded_missing_output: int
    missing_outputs: int
    invalid_previews: int
    not_in_manifest: int
    orphans: int
    status_histogram_before: Mapping[str, int]
    status_histogram_after: Mapping[str, int]
    conflicts: tuple[Conflict, ...]
    timestamp: str
    elapsed_s: float

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"event": "consolidate"}
        for field in attrs.fields(Summary):
            if field.name == "conflicts":
                continue
            value = getattr(self, field.name)
            record[field.name] = dict(value) if isinstance(value, Mapping) else value
        record["conflicts"] = [c.to_record() for c in self.conflicts[:MAX_CONFLICTS]]
        record["conflicts_truncated"] = len(self.conflicts) > MAX_CONFLICTS
        return record


def read_manifest(resolver: PathResolver, run_id: str) -> dict[str, Job]:
    """The run's manifest jobs in file order (first entry of a job_id wins); empty if there is none."""
    path = resolver.manifest_path(run_id)
    if not path.exists():
        return {}
    table = read_csv_table(path, validate_manifest)
    jobs: dict[str, Job] = {}
    for cells in table.rows(range(len(table))):
        jobs.setdefault(cells["job_id"], Job.from_cells(cells))
    return jobs


def _groups(table: CsvTable | None, run_id: str) -> dict[str, list[int]]:
    """Row indices of each job of the run, jobs in file order."""
    groups: dict[str, list[int]] = {}
    if table is None or not len(table):
        return groups
    frame = table.frame
    hits = frame.index[frame["run_id"] == run_id].tolist()
    for index, job_id in zip(hits, frame["job_id"].take(hits).tolist()):
        groups.setdefault(job_id, []).append(index)
    return groups


def _select(
    groups: Mapping[str, list[int]], statuses: Sequence[str], manifest: Mapping[str, Job], options: ConsolidateOptions
) -> list[str]:
    """Jobs considered: CSV jobs in file order, then manifest-only ones; --only-status and --max-rows."""
    wanted = None if options.only_status is None else {s.value for s in options.only_status}
    chosen = [j for j, rows in groups.items() if wanted is None or any(statuses[i] in wanted for i in rows)]
    if wanted is None or Status.ENQUEUED.value in wanted:
        chosen += [j for j in manifest if j not in groups]
    return chosen if options.max_rows is None else chosen[: max(options.max_rows, 0)]


@attrs.frozen
class _Plan:
    replaced: dict[int, bytes]
    appended: list[bytes]
    added_columns: list[str]
    written: list[tuple[int, dict[str, str]]]
    counts: dict[str, int]
    conflicts: list[Conflict]
    before: Counter[str]
    after: Counter[str]


_RECORDED_PATHS = ("gen_object_path", *PREVIEW_COLUMNS)


def _recorded(rows: Sequence[GenerationRow]) -> Recorded:
    if not rows:
        return Recorded()
    paths = tuple(dict.fromkeys(p for r in rows for c in _RECORDED_PATHS if (p := getattr(r, c))))
    winner = merge_winner(rows)
    settled = (
        winner.status
        if len(rows) == 1
        and winner.status in (Status.COMPLETED, Status.FAILED)
        and winner.generation_start is not None
        and winner.generation_end is not None
        else None
    )
    return Recorded(
        paths, (winner.preview_1_path, winner.preview_2_path, winner.preview_3_path), winner.gen_object_path, settled
    )


def _rows_of(table: CsvTable | None, groups: Mapping[str, list[int]], jobs: Sequence[str]) -> dict[str, list[GenerationRow]]:
    if table is None:
        return {}
    indices = [i for j in jobs for i in groups.get(j, ())]
    rows = {i: GenerationRow.from_cells(cells, table.lines[i]) for i, cells in zip(indices, table.rows(indices))}
    return {j: [rows[i] for i in groups[j]] for j in jobs if j in groups}


def _plan(
    table: CsvTable,
    groups: Mapping[str, list[int]],
    rows: Mapping[str, list[GenerationRow]],
    jobs: Sequence[str],
    manifest: Mapping[str, Job],
    evidence: Mapping[str, Evidence],
    options: ConsolidateOptions,
    now: dt.datetime,
    orphans: Sequence[str],
) -> _Plan:
    counts: Counter[str] = Counter()
    conflicts: list[Conflict] = []
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    final: dict[str, tuple[GenerationRow, int | None, list[int]]] = {}
    header_set = set(table.header)
    for job_id in jobs:
        group = rows.get(job_id, [])
        counts["considered"] += len(group) or 1
        ev = evidence[job_id]
        if len(group) > 1:
            merged, conflict = merge_duplicates(group, ev)
            conflicts.append(conflict)
            counts["duplicate_rows_merged"] += len(group) - 1
            row: GenerationRow | None = merged
        else:
            row = group[0] if group else None
        for r in group:
            before[r.status.value] += 1
        decision = reconcile(row, manifest.get(job_id), ev, options.reconcile_options, now, options.run_id, job_id)
        conflicts.extend(decision.conflicts)
        after[decision.row.status.value] += 1
        counts["marker_mismatches_fixed"] += decision.marker_mismatch_fixed
        counts["downgraded_missing_output"] += decision.downgraded
        counts["missing_outputs"] += decision.missing_output
        counts["invalid_previews"] += len(ev.invalid_previews)
        counts["not_in_manifest"] += bool(group) and job_id not in manifest
        final[job_id] = (decision.row, groups[job_id][0] if group else None, groups.get(job_id, []))
    # A known column the file lacks is added (at the tail) only when some row has a value for it.
    added = [c for c in GENERATIONS_COLUMNS if c not in header_set and any(f[0].cell(c) for f in final.values())]
    header = [*table.header, *added]
    replaced: dict[int, bytes] = {}
    appended: list[bytes] = []
    written: list[tuple[int, dict[str, str]]] = []
    next_line = (table.lines[-1] + 1) if len(table) else 2
    for job_id, (row, first_index, indices) in final.items():
        cells = row.to_cells() if first_index is None or row != rows[job_id][0] or len(indices) > 1 else None
        if first_index is not None:
            original = rows[job_id][0].source
            text = None if cells is None else [cells.get(c, "") for c in header]
            same = text is None or text == [original.get(c, "") for c in header]
            for other in indices[1:]:
                replaced[other] = b""
            if same:
                counts["unchanged"] += 1
                continue
            assert text is not None
            replaced[first_index] = encode_row(text, table.newline)
            written.append((table.lines[first_index], dict(zip(header, text))))
            counts["upsert_updated"] += 1
        else:
            assert cells is not None
            text = [cells.get(c, "") for c in header]
            appended.append(encode_row(text, table.newline))
            written.append((next_line, dict(zip(header, text))))
            next_line += 1
            counts["upsert_inserted"] += 1
    counts["orphans"] = len(orphans)
    conflicts.extend(
        Conflict(job_id, "orphan", "outputs or markers of a job in neither the CSV nor the manifest", resolved=False)
        for job_id in orphans
    )
    counts["conflicts_resolved"] = sum(c.resolved for c in conflicts)
    return _Plan(replaced, appended, added, written, dict(counts), conflicts, before, after)


def _check_written(plan: _Plan, path: Path) -> None:
    if plan.written:
        frame = pd.DataFrame([cells for _, cells in plan.written], dtype="str")
        check_frame(frame, GENERATIONS_SCHEMA, str(path), [line for line, _ in plan.written])


def consolidate(
    workspace: str | Path | PathResolver | None,
    options: ConsolidateOptions,
    *,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Reconcile one run's on-disk evidence with tables/generations.csv; returns the summary record.

    Raises InputError (bad input, exit 2), StrictConflictError (exit 1), WriteRefusedError (exit 3).
    """
    with _no_gc_pauses():
        try:
            return _consolidate(workspace, options, now, progress)
        except OSError as error:  # e.g. a folder that cannot be read: bad input, never a traceback
            raise InputError(f"{error.filename or 'workspace'}: {error.strerror or error}") from None


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Consolidate builds ~10 long-lived objects per job and no cycles: the cyclic GC would only rescan them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _consolidate(
    workspace: str | Path | PathResolver | None,
    options: ConsolidateOptions,
    now: dt.datetime | None,
    progress: Progress | None,
) -> Summary:
    started = time.monotonic()
    resolver = workspace if isinstance(workspace, PathResolver) else PathResolver(workspace)
    run_id = validate_id(options.run_id, "run_id")
    moment = now or dt.datetime.now(UTC)
    log_path = resolver.metrics_log_path()
    if os.path.lexists(log_path) and not log_path.is_file():
        raise InputError(f"{log_path}: is not a regular file, so the summary cannot be logged. Nothing was changed.")
    csv_path = resolver.generations_csv_path()
    table = read_csv_table(csv_path, validate_generations) if csv_path.exists() else None
    manifest = read_manifest(resolver, run_id)
    groups = _groups(table, run_id)
    if not resolver.run_root(run_id).is_dir():
        if groups:
            raise UnknownRunError(
                f"{resolver.run_root(run_id)}: folder missing while {csv_path} has"
                f" {sum(map(len, groups.values()))} rows of run {run_id!r}; with no evidence at all every"
                " completed job would be downgraded. Nothing was changed."
            )
        raise UnknownRunError(f"unknown run {run_id!r}: no row in {csv_path}, no {resolver.run_root(run_id)} folder")
    statuses = table.column("status") if table is not None else []
    jobs = _select(groups, statuses, manifest, options)
    rows = _rows_of(table, groups, jobs)
    recorded = {j: _recorded(rows.get(j, [])) for j in jobs}
    scanner = RunScanner(resolver, run_id)
    evidence = scanner.scan(recorded, progress)
    prefix = f"runs/{run_id}/outputs/"
    legacy_folders = {  # e.g. outputs/<algo>/ of old layouts: named by rows, not a job's folder
        p[len(prefix) :].split("/", 1)[0] for r in recorded.values() for p in map(to_posix, r.paths) if p.startswith(prefix)
    }
    orphans = tuple(sorted(scanner.job_ids_on_disk() - set(groups) - set(manifest) - legacy_folders))
    base = table if table is not None else CsvTable.empty(csv_path, GENERATIONS_COLUMNS)
    plan = _plan(base, groups, rows, jobs, manifest, evidence, options, moment, orphans)
    _check_written(plan, csv_path)
    written = False

    def summary() -> Summary:
        return _summary(options, plan, written, moment, time.monotonic() - started)

    if options.strict and plan.conflicts:
        result = summary()
        append_log_record(resolver.metrics_log_path(), result.to_record())
        raise StrictConflictError(f"--strict: {len(plan.conflicts)} conflicts found; nothing was written", result)
    if not options.dry_run and (plan.replaced or plan.appended):
        plan, written = _write(resolver, table, plan, recorded, jobs, manifest, evidence, options, moment, scanner, orphans)
    result = summary()
    append_log_record(resolver.metrics_log_path(), result.to_record())
    return result


def _write(
    resolver: PathResolver,
    table: CsvTable | None,
    plan: _Plan,
    recorded: Mapping[str, Recorded],
    jobs: Sequence[str],
    manifest: Mapping[str, Job],
    evidence: Mapping[str, Evidence],
    options: ConsolidateOptions,
    now: dt.datetime,
    scanner: RunScanner,
    orphans: Sequence[str],
) -> tuple[_Plan, bool]:
    """Under the lock: merge against the file as it is now, reconciling again rows that changed.

    Rows are pure functions of (row, evidence): reconciling the fresh file again gives the same
    decisions for rows nobody touched, and fresh ones for rows a worker changed meanwhile.
    """
    path = resolver.generations_csv_path()
    resolver.tables_root.mkdir(parents=True, exist_ok=True)
    base = table if table is not None else CsvTable.empty(path, GENERATIONS_COLUMNS)
    with table_lock(path, options.lock_timeout):
        current_bytes = path.read_bytes() if path.exists() else None
        if current_bytes != (table.data if table is not None else None):
            fresh = read_csv_table(path, validate_generations) if current_bytes is not None else None
            base = fresh if fresh is not None else CsvTable.empty(path, GENERATIONS_COLUMNS)
            groups = _groups(fresh, options.run_id)
            rows = _rows_of(fresh, groups, jobs)
            evidence = dict(evidence)
            for job_id, group in rows.items():
                now_recorded = _recorded(group)
                if now_recorded != recorded.get(job_id):
                    evidence[job_id] = scanner.evidence(job_id, now_recorded)
            plan = _plan(base, groups, rows, jobs, manifest, evidence, options, now, orphans)
            _check_written(plan, path)
            if not (plan.replaced or plan.appended):
                return plan, False
        write_bytes_atomic(path, render_table(base, plan.replaced, plan.appended, plan.added_columns))
    return plan, True


_COUNTERS = (
    "considered", "upsert_inserted", "upsert_updated", "unchanged", "duplicate_rows_merged",
    "conflicts_resolved", "marker_mismatches_fixed", "downgraded_missing_output", "missing_outputs",
    "invalid_previews", "not_in_manifest", "orphans",
)  # fmt: skip


def _summary(
    options: ConsolidateOptions,
    plan: _Plan,
    written: bool,
    now: dt.datetime,
    elapsed: float,
) -> Summary:
    return Summary(
        run_id=options.run_id,
        dry_run=options.dry_run,
        strict=options.strict,
        written=written,
        **{name: plan.counts.get(name, 0) for name in _COUNTERS},
        status_histogram_before=dict(sorted(plan.before.items())),
        status_histogram_after=dict(sorted(plan.after.items())),
        conflicts=tuple(plan.conflicts),
        timestamp=now.isoformat(),
        elapsed_s=round(elapsed, 3),
    )
