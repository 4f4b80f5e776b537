"""Deciding the jobs of a run: settled rows by the settled check, every other job through the reconciler."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import NamedTuple

import attrs

from archi3d.columns import GENERATIONS_COLUMNS, PATH_COLUMNS, PREVIEW_COLUMNS
from archi3d.consolidation.options import ConsolidateOptions
from archi3d.consolidation.selection import JobRows, considered_rows
from archi3d.csvtable import NEW_TABLE_NEWLINE, CsvTable, encode_row
from archi3d.listing import Chosen, Listing
from archi3d.manifest import Manifest
from archi3d.merge import merge_duplicates, merge_winner
from archi3d.model import Evidence, GenerationRow, Job, Status
from archi3d.reconcile import Conflict, Decision, reconcile
from archi3d.scan import Recorded, RunScanner
from archi3d.settled import RowFacts, settled

__all__ = ["Outcome", "Reconciled", "RunContext", "decide", "reconcile_job", "table_columns"]

_BATCH = 1000
"""Jobs reconciled at a time: only a batch's typed rows are ever built at once."""
_RECORDED_PATHS = ("gen_object_path", *PREVIEW_COLUMNS)
_TIME_COLUMNS = ("generation_start", "generation_end", "generation_duration_s")


class Outcome(NamedTuple):
    """What consolidate decided for one job, in plain values (another process may have decided it)."""

    after: str
    """The job's status once consolidated."""
    record: bytes | None = None
    """Its reconciled row, every cell in `table_columns` order, encoded as the table writes its rows
    (held as bytes: a third of the memory of its cells as text); None when its (first) row keeps its bytes."""
    conflicts: tuple[Conflict, ...] = ()
    marker_mismatch_fixed: bool = False
    downgraded: bool = False
    missing_output: bool = False
    invalid_previews: int = 0
    object_changed: bool = False
    reasons: tuple[tuple[str, str], ...] = ()
    """Why each changed column of the job's row changes (column, rule), for the change report."""

    @property
    def is_quiet(self) -> bool:
        """Nothing to report: no conflict, no fix, nothing found missing or invalid."""
        return not (
            self.conflicts
            or self.marker_mismatch_fixed
            or self.downgraded
            or self.missing_output
            or self.invalid_previews
            or self.object_changed
        )


_SETTLED = {status.value: Outcome(status.value) for status in Status}
"""The outcome of a settled row, by its status: it stays as it is."""
_HASH_REASONS = (("gen_object_sha256", "object_hash"), ("gen_object_bytes", "object_hash"))


@attrs.frozen
class RunContext:
    """What deciding jobs of a run takes: the table as read and its rows by job, the manifest, the scan."""

    table: CsvTable | None
    groups: JobRows
    """Row indices of each job of the run, jobs in file order."""
    manifest: Manifest
    scanner: RunScanner
    options: ConsolidateOptions
    now: dt.datetime


def table_columns(table: CsvTable | None) -> list[str]:
    """The table's columns, then the known columns it lacks: every column a reconciled row can fill."""
    header = table.header if table is not None else ()
    return [*header, *(c for c in GENERATIONS_COLUMNS if c not in header)]


def decide(
    run: RunContext,
    jobs: Sequence[str],
    decided: Callable[[int], None] | None = None,
    *,
    settled_check: bool = True,
) -> dict[str, Outcome]:
    """The outcome of each job of `jobs`; `decided(rows)` is told now and then how many more rows (as
    the summary's `considered` counts them) are decided.

    `settled_check=False` sends every job through the reconciler: slower, and the same outcomes (the
    tests hold the settled check to that).
    """
    table, groups, scanner, rules = run.table, run.groups, run.scanner, run.options.rules
    facts = _row_facts(table, groups, jobs) if table is not None else {}
    columns = table_columns(table)
    outcomes: dict[str, Outcome] = {}
    pending: dict[str, Listing] = {}
    reported = 0
    for done, job_id in enumerate(jobs, 1):
        fact = facts.get(job_id)
        listing = scanner.listing(job_id)
        markers = scanner.markers(job_id)
        heartbeat = scanner.marker_at(job_id, "inprogress") if "inprogress" in markers else None
        verdict = None
        if settled_check and fact is not None:
            verdict = settled(fact, markers, heartbeat, listing, scanner.folder_rel(job_id), rules, run.now)
        if fact is None or verdict is None:
            pending[job_id] = listing
            if len(pending) >= _BATCH:
                outcomes.update(_reconciled_batch(run, pending))
                pending.clear()
        elif verdict.unhashed is None:
            outcomes[job_id] = _SETTLED[fact.status]
        else:
            outcomes[job_id] = _hash_recorded(run, groups[job_id][0], verdict.unhashed, columns)
        if decided is not None and (done % _BATCH == 0 or done == len(jobs)):
            decided(considered_rows(groups, jobs[reported:done]))
            reported = done
    outcomes.update(_reconciled_batch(run, pending))
    return outcomes


def _hash_recorded(run: RunContext, index: int, unhashed: Chosen, columns: Sequence[str]) -> Outcome:
    """The outcome of a settled completed row that records its object's hash for the first time."""
    sha256 = run.scanner.object_sha256(unhashed.path)
    if run.table is None or sha256 is None:  # unreadable: the reconciler too leaves the row as it is
        return _SETTLED[Status.COMPLETED.value]
    cells = {**run.table.record(index), "gen_object_sha256": sha256, "gen_object_bytes": str(unhashed.entry.size)}
    return Outcome(Status.COMPLETED.value, record=_encoded(run, _in_order(cells, columns)), reasons=_HASH_REASONS)


def _row_facts(table: CsvTable, groups: JobRows, jobs: Sequence[str]) -> dict[str, RowFacts]:
    """The cells the settled check looks at, for each job of `jobs` that has exactly one row."""
    single = [j for j in jobs if len(groups.get(j, ())) == 1]
    indices = [groups[j][0] for j in single]
    if not indices:
        return {}
    named = ("status", *_RECORDED_PATHS, *_TIME_COLUMNS, "error_msg", "gen_object_sha256", "gen_object_bytes")
    cells = table.columns(indices, named).values()
    # A backslash in a path cell: the few records holding one at all are looked at closely.
    data, starts, ends = table.data, table.starts, table.ends
    suspects = [i for i in indices if data.find(b"\\", starts[i], ends[i]) >= 0]
    paths = table.columns(suspects, PATH_COLUMNS).values()
    backslashed = {i for i, *cells_of_row in zip(suspects, *paths) if any("\\" in cell for cell in cells_of_row)}
    return {
        job_id: RowFacts(
            status=status,
            gen_object_path=gen_object,
            previews=(p1, p2, p3),
            has_start=bool(start),
            has_end=bool(end),
            has_duration=bool(duration),
            error_msg=error,
            has_backslash=i in backslashed,
            gen_object_sha256=sha256,
            gen_object_bytes=size,
        )
        for job_id, i, status, gen_object, p1, p2, p3, start, end, duration, error, sha256, size in zip(
            single, indices, *cells
        )
    }


def _rows_of(table: CsvTable | None, groups: JobRows, jobs: Iterable[str]) -> dict[str, list[GenerationRow]]:
    if table is None:
        return {}
    wanted = [j for j in jobs if j in groups]
    indices = [i for j in wanted for i in groups[j]]
    rows = {i: GenerationRow.from_cells(cells, table.lines[i]) for i, cells in zip(indices, table.rows(indices))}
    return {j: [rows[i] for i in groups[j]] for j in wanted}


def _reconciled_batch(run: RunContext, listings: Mapping[str, Listing]) -> dict[str, Outcome]:
    rows = _rows_of(run.table, run.groups, listings)
    jobs_to_insert = run.manifest.jobs(j for j in listings if j not in rows)
    columns = table_columns(run.table)
    return {
        job_id: _reconciled(run, rows.get(job_id, []), jobs_to_insert.get(job_id), listing, job_id, columns)
        for job_id, listing in listings.items()
    }


def _recorded(rows: Sequence[GenerationRow]) -> Recorded:
    """What the job's rows record, for the scan to check; a merged row takes each time from whichever row has one."""
    if not rows:
        return Recorded()
    winner = merge_winner(rows)
    return Recorded(
        paths=tuple(dict.fromkeys(p for r in rows for c in _RECORDED_PATHS if (p := getattr(r, c)))),
        previews=(winner.preview_1_path, winner.preview_2_path, winner.preview_3_path),
        gen_object=winner.gen_object_path,
        completed=winner.status is Status.COMPLETED,
        sha256=winner.gen_object_sha256,
        bytes=winner.gen_object_bytes,
        times_known=any(r.generation_start for r in rows) and any(r.generation_end for r in rows),
    )


def _in_order(cells: Mapping[str, str], columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(map(cells.get, columns, repeat("")))


def _encoded(run: RunContext, cells: Sequence[str]) -> bytes:
    return encode_row(cells, run.table.newline if run.table is not None else NEW_TABLE_NEWLINE)


@attrs.frozen(slots=False)
class Reconciled:
    """One job through the reconciler: its evidence, its row (its rows merged), and the decision."""

    evidence: Evidence
    row: GenerationRow | None
    """The job's row as the reconciler took it: its one row, its rows merged, or None (a manifest job)."""
    decision: Decision
    merge: Conflict | None = None


def reconcile_job(
    run: RunContext, group: Sequence[GenerationRow], job: Job | None, listing: Listing, job_id: str
) -> Reconciled:
    """One job through the reconciler, its duplicate rows merged first."""
    evidence = run.scanner.evidence(job_id, _recorded(group), listing, run.options.verify_hashes)
    row, merge = group[0] if group else None, None
    if len(group) > 1:
        row, merge = merge_duplicates(group, evidence.existing_paths)
    options = run.options
    decision = reconcile(row, job, evidence, options.rules, run.now, options.run_id, job_id)
    return Reconciled(evidence, row, decision, merge)


def _reconciled(
    run: RunContext,
    group: Sequence[GenerationRow],
    job: Job | None,
    listing: Listing,
    job_id: str,
    columns: Sequence[str],
) -> Outcome:
    """One job's outcome: the reconciler's decision, and the text its row gets."""
    reconciled = reconcile_job(run, group, job, listing, job_id)
    evidence, decision = reconciled.evidence, reconciled.decision
    conflicts: tuple[Conflict, ...] = () if reconciled.merge is None else (reconciled.merge,)
    first = group[0] if group else None
    text: tuple[str, ...] | None = None  # None: the first row keeps its bytes
    if first is None or len(group) > 1:
        text = _in_order(decision.row.to_cells(), columns)
        if first is not None and text == _in_order(first.source, columns):
            text = None
    elif decision.row is not first:  # reconcile returns an untouched row as it is
        changed = decision.row.changed_cells(first)
        if any(first.source.get(column, "") != cell for column, cell in changed.items()):
            text = _in_order({**first.source, **changed}, columns)
    return Outcome(
        after=decision.row.status.value,
        record=None if text is None else _encoded(run, text),
        conflicts=conflicts + decision.conflicts,
        marker_mismatch_fixed=decision.marker_mismatch_fixed,
        downgraded=decision.downgraded,
        missing_output=decision.missing_output,
        invalid_previews=len(evidence.invalid_previews),
        object_changed=decision.object_changed,
        reasons=() if text is None else _reasons(reconciled, first),
    )


def _reasons(reconciled: Reconciled, first: GenerationRow | None) -> tuple[tuple[str, str], ...]:
    """Why each column changes: the reconciler's reasons, over the cells a merge took from other rows."""
    merged = reconciled.row
    taken = {}
    if first is not None and merged is not None and merged is not first:
        taken = {c: "duplicate_merge" for c, v in merged.source.items() if first.source.get(c, "") != v}
    return tuple({**taken, **reconciled.decision.reasons}.items())
