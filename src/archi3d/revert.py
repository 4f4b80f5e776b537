"""archi3d revert: undo a consolidate run from its change report, wherever the table still holds what the
run wrote; whatever changed since is left alone and listed. Under the table lock, one atomic write."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from archi3d.atomic import append_log_record, write_bytes_atomic
from archi3d.consolidation.report import REPORT_VERSION
from archi3d.consolidation.selection import job_rows
from archi3d.csvrender import encode_row, line_ended, render_chunks
from archi3d.csvtable import BOM, CsvTable, read_csv_table
from archi3d.errors import InputError, WriteFailedError
from archi3d.lock import DEFAULT_LOCK_TIMEOUT, table_lock
from archi3d.paths import PathResolver

__all__ = ["RevertSummary", "revert"]


@attrs.frozen
class RevertSummary:
    """What a revert put back, and what it left alone because it changed since the report was made."""

    report: str
    table: str
    written: bool
    rows_restored: int = 0
    """Rows given back their whole text from before the run."""
    cells_restored: int = 0
    """Cells given back their text in rows changed since in other cells."""
    rows_removed: int = 0
    """Rows the run inserted, removed."""
    rows_put_back: int = 0
    """Duplicate rows the run merged away, put back where they stood."""
    columns_removed: int = 0
    left_alone: tuple[str, ...] = ()

    def to_record(self) -> dict[str, Any]:
        return {"event": "revert", **attrs.asdict(self)}


_TEXT, _NUMBER, _FLAG, _NAMES = "text", "number", "true or false", "a list of column names"
_FIELDS: dict[str, dict[str, str]] = {
    "consolidate": {
        "run_id": _TEXT,
        "written": _FLAG,
        "header_before": _TEXT,
        "header_after": _TEXT,
        "added_columns": _NAMES,
    },
    "row_updated": {"job_id": _TEXT, "line": _NUMBER, "before": _TEXT, "after": _TEXT},
    "cell": {"job_id": _TEXT, "line": _NUMBER, "column": _TEXT, "before": _TEXT, "after": _TEXT},
    "row_merged": {"job_id": _TEXT, "line": _NUMBER, "index": _NUMBER, "text": _TEXT},
    "row_inserted": {"job_id": _TEXT, "line": _NUMBER, "text": _TEXT},
    "conflict": {},
}
"""The fields revert reads, by record type, and what each must hold."""


def _holds(value: object, kind: str) -> bool:
    if kind == _NUMBER:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == _NAMES:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, bool if kind == _FLAG else str)


def _problems(record: object) -> list[str]:
    """Every way a JSON value falls short of a record of a change report (none: it is one)."""
    if not isinstance(record, dict):
        return ["not a record of a change report"]
    kind = record.get("type")
    if kind not in _FIELDS:
        return [f"not a record of a change report (type {kind!r}; expected one of {', '.join(_FIELDS)})"]
    return [
        f"{name}: expected {expected}, found {json.dumps(record.get(name))}"
        for name, expected in _FIELDS[kind].items()
        if not _holds(record.get(name), expected)
    ]


def _read_report(path: Path) -> list[dict[str, Any]]:
    """The report's records, each checked for the fields revert reads; InputError naming each problem."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot be read as a change report ({error})") from error
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError as error:
            raise InputError(f"{path}:{number}: not a JSON line of a change report ({error})") from None
        problems = _problems(record)
        if (
            number == 1
            and not problems
            and (record["type"] != "consolidate" or record.get("version") != REPORT_VERSION)
        ):
            problems = [f"expected the head of a consolidate change report (version {REPORT_VERSION})"]
        if problems:
            raise InputError(f"{path}:{number}: " + "; ".join(problems))
        records.append(record)
    if not records:
        raise InputError(f"{path}: empty; expected the head of a consolidate change report (version {REPORT_VERSION})")
    return records


def revert(
    workspace: str | os.PathLike[str] | PathResolver | None,
    report: str | os.PathLike[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> RevertSummary:
    """Undo, in the workspace's table, what the consolidate run of `report` changed and is still there.

    Each row the run updated gets its text back if it still holds the text the run wrote, else each
    cell that still holds the run's text gets its text back; rows the run inserted are removed if they
    are still as written; duplicate rows it merged away are put back where they stood; columns it
    added are removed once empty. A revert of a run nothing touched since gives back the table byte
    for byte. A revert that wrote appends its summary to logs/metrics.log.
    """
    resolver = workspace if isinstance(workspace, PathResolver) else PathResolver(workspace)
    report_path = Path(report)
    records = _read_report(report_path)
    head = records[0]
    path = resolver.generations_csv_path()
    if not head.get("written"):
        return RevertSummary(str(report_path), str(path), False, left_alone=("the run wrote nothing",))
    run_id = str(head["run_id"])
    with table_lock(path, lock_timeout):
        if not path.exists():
            raise InputError(f"{path}: missing; there is no table to revert")
        added = [str(c) for c in head.get("added_columns", [])]
        table = read_csv_table(path, columns=("run_id", "job_id", *added))
        undo = _Undo(table, run_id, head, records)
        summary = undo.apply(str(report_path), str(path))
        if summary.written:
            chunks = render_chunks(table, undo.replaced, undo.after_last, header=undo.header)
            if head.get("final_newline") is False:  # the run gave the last row a line ending
                chunks = [b"".join(chunks).removesuffix(table.newline)]
            write_bytes_atomic(path, chunks, replace_timeout=lock_timeout)
    if summary.written:
        try:
            append_log_record(resolver.metrics_log_path(), summary.to_record())
        except WriteFailedError as error:
            raise WriteFailedError(f"{path} was reverted, but its record was not logged: {error}", error) from error
    return summary


class _Undo:
    """The edit that undoes a report in one table: the rows to replace (b"": remove), and the header."""

    def __init__(self, table: CsvTable, run_id: str, head: Mapping[str, Any], records: Sequence[dict[str, Any]]):
        self.table = table
        self.records = records
        self.head = head
        self.added = [str(c) for c in head.get("added_columns", [])]
        self.rows: dict[int, bytes] = {}
        """New text of rows, by index: restored, re-encoded, or b"" (removed)."""
        self.original: set[int] = set()
        """Rows whose new text is their text from before the run (never widened or narrowed)."""
        self.edited: dict[int, dict[str, str]] = {}
        """The cells of rows given back some of their cells."""
        self.put_back: dict[int, list[bytes]] = {}
        """Rows put back before the row of that index (len(table): after the last)."""
        self.header: bytes | None = None
        self.left: list[str] = []
        self.counts = {"rows_restored": 0, "cells_restored": 0, "rows_removed": 0, "rows_put_back": 0}
        jobs = {str(r["job_id"]) for r in records if r["type"] in ("row_updated", "row_inserted", "row_merged")}
        self.by_job = job_rows(table, run_id, jobs)
        self.widened_since = b"," * max(len(table.header) - _width(head["header_after"]), 0)
        """What a later phase that added columns appended to every row the run wrote."""

    @property
    def replaced(self) -> dict[int, bytes]:
        """Every row to replace, with the rows put back before it."""
        rows = {
            at: self.rows.get(at, self.table.raw(at)) for at in {*self.rows, *self.put_back} if at < len(self.table)
        }
        for at, texts in self.put_back.items():
            if at < len(self.table):
                rows[at] = b"".join(texts) + rows[at]
        return rows

    @property
    def after_last(self) -> list[bytes]:
        """The rows put back after the last row."""
        return [text for at, texts in sorted(self.put_back.items()) if at >= len(self.table) for text in texts]

    def apply(self, report: str, table: str) -> RevertSummary:
        cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for record in self.records:
            if record["type"] == "cell":
                cells.setdefault((record["job_id"], record["line"]), []).append(record)
        merged = [r for r in self.records if r["type"] == "row_merged"]
        # The run left one row of each job it merged: several now, and its merge is undone already.
        unmerged = {r["job_id"] for r in merged if len(self.by_job.get(r["job_id"], ())) > 1}
        for job_id in sorted(unmerged):
            self.left.append(f"{job_id}: has several rows again (the rows the run merged are back)")
        for record in self.records:
            if record.get("job_id") in unmerged:
                continue
            if record["type"] == "row_updated":
                self._restore(record, cells.get((record["job_id"], record["line"]), []))
            elif record["type"] == "row_inserted":
                self._remove(record)
        self._put_back_merged([r for r in merged if r["job_id"] not in unmerged])
        columns_removed = self._fit_columns()
        written = bool(self.rows or self.put_back) or self.header is not None
        return RevertSummary(
            report, table, written, **self.counts, columns_removed=columns_removed, left_alone=tuple(self.left)
        )

    def _find(self, job_id: str, text: str) -> int | None:
        wanted = _widened(text.encode("utf-8"), self.widened_since)
        return next(
            (i for i in self.by_job.get(job_id, ()) if i not in self.rows and self.table.raw(i) == wanted), None
        )

    def _restore(self, record: Mapping[str, Any], cell_records: Iterable[Mapping[str, Any]]) -> None:
        job_id = record["job_id"]
        at = self._find(job_id, record["after"])
        if at is not None:
            self.rows[at] = record["before"].encode("utf-8")
            self.original.add(at)
            self.counts["rows_restored"] += 1
            return
        candidates = [i for i in self.by_job.get(job_id, ()) if i not in self.rows]
        if not candidates:
            self.left.append(f"{job_id}: its row (line {record['line']}) is gone")
            return
        at = candidates[0]
        current = self.table.record(at)
        restored = 0
        for cell in cell_records:
            column = cell["column"]
            if current.get(column, "") == cell["after"]:
                current[column] = cell["before"]
                restored += 1
            else:
                self.left.append(f"{job_id}: {column} changed since (now {current.get(column, '')!r})")
        if restored:
            self.rows[at] = encode_row([current[c] for c in self.table.header], self.table.newline)
            self.edited[at] = current
            self.counts["cells_restored"] += restored

    def _remove(self, record: Mapping[str, Any]) -> None:
        at = self._find(record["job_id"], record["text"])
        if at is None:
            self.left.append(f"{record['job_id']}: the row the run inserted changed since, or is gone")
            return
        self.rows[at] = b""
        self.counts["rows_removed"] += 1

    def _put_back_merged(self, merged: Sequence[Mapping[str, Any]]) -> None:
        """Each row merged away goes back before the row that now stands where it stood."""
        for shift, record in enumerate(sorted(merged, key=lambda r: int(r["index"]))):
            at = min(int(record["index"]) - shift, len(self.table))
            self.put_back.setdefault(at, []).append(line_ended(record["text"].encode("utf-8"), self.table.newline))
            self.counts["rows_put_back"] += 1

    def _fit_columns(self) -> int:
        """Drop the run's added columns when no row holds a value in them (and the header is still the
        run's); else widen what comes back with the text from before the run to the header's width."""
        width_before = _width(self.head["header_before"])
        if self.added and _header_text(self.table) != self.head["header_after"]:
            self.left.append("the header changed since: the columns the run added stay")
        elif self.added and any(self._holds_values(c) for c in self.added):
            self.left.append(f"columns {', '.join(self.added)} hold values now: they stay")
        elif self.added:
            self._drop_added_columns()
            return len(self.added)
        pad = b"," * (len(self.table.header) - width_before)
        if width_before and pad:
            for at in self.original:
                self.rows[at] = _widened(self.rows[at], pad)
            for texts in self.put_back.values():
                texts[:] = [_widened(text, pad) for text in texts]
        return 0

    def _holds_values(self, column: str) -> bool:
        """Whether a row the revert leaves in the table, as the revert leaves it, holds a value in `column`."""
        return any(
            self.edited[at].get(column, "") if at in self.edited else cell
            for at, cell in enumerate(self.table.column(column))
            if at not in self.original and self.rows.get(at) != b""
        )

    def _drop_added_columns(self) -> None:
        pad = b"," * len(self.added)
        for at in range(len(self.table)):
            if at in self.original or self.rows.get(at) == b"":
                continue
            raw = self.rows.get(at, self.table.raw(at))
            body = raw.rstrip(b"\r\n")
            if body.endswith(pad):
                self.rows[at] = body[: -len(pad)] + raw[len(body) :]
        self.header = (BOM if self.head.get("bom") else b"") + self.head["header_before"].encode("utf-8")


def _widened(raw: bytes, pad: bytes) -> bytes:
    body = raw.rstrip(b"\r\n")
    return body + pad + raw[len(body) :]


def _width(header: str) -> int:
    return len(next(csv.reader([header]))) if header else 0


def _header_text(table: CsvTable) -> str:
    return table.data[: table.header_end].removeprefix(BOM).decode("utf-8")
