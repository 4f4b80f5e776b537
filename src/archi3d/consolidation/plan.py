"""The edit a run's outcomes make to the table, and its counters: a pure function of the table's layout."""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Mapping, Sequence
from pathlib import Path

import attrs

from archi3d.consolidation.deciding import Outcome, table_columns
from archi3d.consolidation.selection import JobRows, considered_rows
from archi3d.consolidation.summary import Counts
from archi3d.csvtable import CsvTable, encode_row, parse_csv_table
from archi3d.errors import Problem, TableError
from archi3d.reconcile import Conflict
from archi3d.schema import GENERATIONS_SCHEMA, check_frame

__all__ = ["Plan", "check_written", "plan_edit", "status_histogram"]

_CHECKED_AT_ONCE = 10_000


@attrs.frozen
class Plan:
    """The rows to replace (b"" removes one) and append, the columns added at the tail, and what was counted."""

    replaced: dict[int, bytes]
    appended: list[bytes]
    added_columns: list[str]
    header: list[str]
    counts: Counts
    conflicts: list[Conflict]
    before: Counter[str]
    after: Counter[str]
    table: CsvTable
    """The table (its layout) the edit applies to, its rows by job, and the outcomes it was made of."""
    groups: JobRows
    outcomes: Mapping[str, Outcome]

    @property
    def changes_the_table(self) -> bool:
        return bool(self.replaced or self.appended)

    @property
    def appended_lines(self) -> range:
        """The line each appended row will stand on."""
        first = _first_line_after(self.table)
        return range(first, first + len(self.appended))


def _first_line_after(table: CsvTable) -> int:
    return (table.lines[-1] + 1) if len(table) else 2


def status_histogram(table: CsvTable, groups: JobRows, jobs: Sequence[str]) -> Counter[str]:
    """How many rows of these jobs hold each status."""
    return Counter(table.columns([i for job_id in jobs for i in groups.get(job_id, ())], ("status",))["status"])


def plan_edit(
    table: CsvTable,
    groups: JobRows,
    jobs: Sequence[str],
    outcomes: Mapping[str, Outcome],
    manifest_jobs: Container[str],
    orphans: Sequence[str],
    before: Counter[str],
) -> Plan:
    """The rows to replace, remove and append, and the counters, for these outcomes against `table`.

    Only the table's layout is read (its cells may be gone); `before` is the jobs' status histogram.
    """
    decided = [outcomes[job_id] for job_id in jobs]
    rows = [groups.get(job_id, ()) for job_id in jobs]
    header, records = _fitted(table, [o.record for o in decided if o.record is not None])
    fitted = iter(records)
    conflicts: list[Conflict] = []
    replaced: dict[int, bytes] = {}
    appended: list[bytes] = []
    updated = marker_fixes = downgrades = missing = invalid = changed_objects = 0
    for outcome, indices in zip(decided, rows):
        if outcome.record is None and len(indices) < 2 and outcome.is_quiet:
            continue  # most jobs of a consolidated run: nothing to write or count
        conflicts.extend(outcome.conflicts)
        marker_fixes += outcome.marker_mismatch_fixed
        downgrades += outcome.downgraded
        missing += outcome.missing_output
        invalid += outcome.invalid_previews
        changed_objects += outcome.object_changed
        for other in indices[1:]:
            replaced[other] = b""
        if outcome.record is None:
            continue
        record = next(fitted)
        if indices:
            replaced[indices[0]] = record
            updated += 1
        else:
            appended.append(record)
    conflicts.extend(
        Conflict(job_id, "orphan", "outputs or markers of a job in neither the CSV nor the manifest", resolved=False)
        for job_id in orphans
    )
    counts = Counts(
        considered=considered_rows(groups, jobs),
        upsert_inserted=len(appended),
        upsert_updated=updated,
        unchanged=len(jobs) - len(records),
        duplicate_rows_merged=sum(len(indices) - 1 for indices in rows if len(indices) > 1),
        conflicts_resolved=sum(c.resolved for c in conflicts),
        marker_mismatches_fixed=marker_fixes,
        downgraded_missing_output=downgrades,
        missing_outputs=missing,
        invalid_previews=invalid,
        not_in_manifest=sum(1 for job_id in jobs if job_id in groups and job_id not in manifest_jobs),
        orphans=len(orphans),
        objects_changed=changed_objects,
    )
    after = Counter(outcome.after for outcome in decided)
    return Plan(
        replaced=replaced,
        appended=appended,
        added_columns=header[len(table.header) :],
        header=header,
        counts=counts,
        conflicts=conflicts,
        before=before,
        after=after,
        table=table,
        groups=groups,
        outcomes=outcomes,
    )


def _fitted(table: CsvTable, records: list[bytes]) -> tuple[list[str], list[bytes]]:
    """The header of the table once written, and `records` (encoded with every column of
    `table_columns`) fitted to it.

    A known column the file lacks is added (at the tail) only when some row has a value for it. A
    record keeps its bytes unless a column is left out or the file's line ending is not the one it
    was encoded with (the file another writer rewrote meanwhile).
    """
    columns = table_columns(table)
    records = [_with_newline(record, table.newline) for record in records]
    if len(columns) == len(table.header) or not records:
        return columns[: len(table.header)], records
    written = parse_csv_table(table.path, encode_row(columns, table.newline) + b"".join(records))
    filled = [c for c in columns[len(table.header) :] if any(written.column(c))]
    header = [*table.header, *filled]
    if len(header) < len(columns):
        records = [encode_row([row[c] for c in header], table.newline) for row in written.rows(range(len(records)))]
    return header, records


def _with_newline(record: bytes, newline: bytes) -> bytes:
    """The record with `newline` in place of its line ending (a cell holding a line break is quoted, so the
    record's own ending is its last one or two bytes)."""
    crlf = record.endswith(b"\r\n")
    if crlf == (newline == b"\r\n"):
        return record
    return (record[:-2] if crlf else record[:-1]) + newline


def check_written(plan: Plan, path: Path) -> None:
    """Validate the rows the plan writes, parsed as the file will be read back (every other row was
    validated as read), a slice at a time."""
    head = encode_row(plan.header, plan.table.newline)
    rows = [(record, plan.table.lines[index]) for index, record in plan.replaced.items() if record]
    rows += zip(plan.appended, plan.appended_lines)
    problems: list[Problem] = []
    for at in range(0, len(rows), _CHECKED_AT_ONCE):
        records, lines = zip(*rows[at : at + _CHECKED_AT_ONCE])
        written = parse_csv_table(path, head + b"".join(records))
        try:
            check_frame(written.frame, GENERATIONS_SCHEMA, str(path), lines)
        except TableError as error:
            problems.extend(error.problems)
    if problems:
        raise TableError(problems)
