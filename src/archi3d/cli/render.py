"""What the command line prints: the consolidate summary, validation problems, progress on a terminal."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from archi3d.errors import Problem

__all__ = ["FORMATS", "TerminalProgress", "explanation_text", "problems_text", "revert_text", "summary_text"]

FORMATS = ("text", "json", "github")
"""`archi3d validate --format`: one line per problem, a JSON list, or GitHub Actions annotations."""
_SHOWN_CONFLICTS = 20


def _histogram(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _headline(record: Mapping[str, Any]) -> str:
    if record["written"]:
        return "written"
    if record["dry_run"]:
        return "dry run, nothing written"
    if record["strict"] and record["conflicts"]:
        return "--strict found conflicts: nothing written"
    return "nothing to change"


def summary_text(record: Mapping[str, Any]) -> str:
    """The plain-text summary of a consolidate record."""
    projected = not record["written"] and (record["upsert_inserted"] or record["upsert_updated"])
    verb = "would insert" if projected else "inserted"
    update = "update" if projected else "updated"
    listed = record["conflicts"]
    open_conflicts = sum(1 for c in listed if c["kind"] in ("orphan", "status_not_fixed"))
    lines = [
        f"consolidate run {record['run_id']}: {_headline(record)}",
        f"  considered {record['considered']} (rows of the run's jobs, and manifest jobs without a row):"
        f" {verb} {record['upsert_inserted']}, {update} {record['upsert_updated']},"
        f" unchanged {record['unchanged']}, duplicate rows merged {record['duplicate_rows_merged']}",
        f"  conflicts: {record['conflicts_resolved']} settled by the rules, {open_conflicts}"
        f"{'+' if record['conflicts_truncated'] else ''} left open (orphans, status changes not applied)",
        f"  marker mismatches fixed {record['marker_mismatches_fixed']}, downgraded (missing output)"
        f" {record['downgraded_missing_output']}, missing outputs {record['missing_outputs']},"
        f" invalid previews {record['invalid_previews']}, not in manifest {record['not_in_manifest']},"
        f" orphans {record['orphans']}, objects changed {record['objects_changed']}",
        f"  status before: {_histogram(record['status_histogram_before'])}",
        f"  status after:  {_histogram(record['status_histogram_after'])}",
    ]
    lines += [f"  conflict {c['job_id']}: {c['kind']}: {c['detail']}" for c in listed[:_SHOWN_CONFLICTS]]
    if len(listed) > _SHOWN_CONFLICTS or record["conflicts_truncated"]:
        lines.append("  ... more conflicts in the log record (--json)")
    if record.get("report"):
        lines.append(f"  every change and conflict: {record['report']}")
    lines.append(f"  elapsed {record['elapsed_s']:.3f} s")
    return "\n".join(lines)


def explanation_text(record: Mapping[str, Any]) -> str:
    """The plain-text explanation of one job."""
    lines = [f"job {record['job_id']}: {record['status_before']} -> {record['status_after']}"]
    lines.append(f"  rule: {record['rule']}")
    if not record["rows"]:
        lines.append("  rows: none in the table")
    for line, cells in record["rows"]:
        lines.append(
            f"  row at line {line}: status {cells.get('status', '')!r}, object {cells.get('gen_object_path', '')!r}"
        )
    lines.append(f"  manifest: {'an entry' if record['manifest'] else 'no entry'}")
    markers = [f".{kind} at {moment} ({source})" for kind, moment, source in record["markers"]]
    lines.append(f"  markers: {', '.join(markers) or 'none'}")
    for found in record["objects"]:
        mark = " (chosen)" if found["chosen"] else ""
        lines.append(f"  object {found['path']}{mark}: {found['bytes']} bytes, sha256 {found['sha256']}")
    if not record["objects"]:
        lines.append("  object: none")
    for preview in record["previews"]:
        valid = "a valid PNG" if preview["valid_png"] else "not a valid PNG"
        found = f"{preview['file']}, {valid}" if preview["file"] else "no file"
        lines.append(f"  preview {preview['slot']}: recorded {preview['recorded'] or 'nothing'}; {found}")
    error = record["error_txt"]
    lines.append(f"  error.txt: {error.splitlines()[0][:120] if error else 'none'}")
    events = [f"{status} at {end} ({duration} s)" for status, end, duration in record["worker_log"]]
    lines.append(f"  worker.log: {', '.join(events) or 'no event'}")
    lines.append(f"  metadata.json: {record['metadata']}")
    for column, before, after in record["changes"]:
        lines.append(f"  would change {column}: {before!r} -> {after!r}")
    if not record["changes"]:
        lines.append("  would change nothing")
    lines += [f"  conflict {c['kind']}: {c['detail']}" for c in record["conflicts"]]
    return "\n".join(lines)


def revert_text(record: Mapping[str, Any]) -> str:
    """The plain-text outcome of a revert, with what it left alone."""
    lines = [
        f"revert {record['report']}: {'written' if record['written'] else 'nothing to give back'}",
        f"  rows restored {record['rows_restored']}, cells restored {record['cells_restored']},"
        f" inserted rows removed {record['rows_removed']}, merged rows put back {record['rows_put_back']},"
        f" columns removed {record['columns_removed']}",
    ]
    lines += [f"  left alone: {reason}" for reason in record["left_alone"]]
    return "\n".join(lines)


def _shown_path(file: str) -> str:
    """A path as GitHub and editors want it: relative to the current folder when it lies inside."""
    relative = os.path.relpath(file)
    return file if relative.startswith("..") else relative


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def problems_text(problems: Sequence[Problem], fmt: str) -> str:
    """Every problem in the chosen format ("" for none, except JSON's empty list)."""
    if fmt == "json":
        records = [
            {"file": _shown_path(p.file), "line": p.line, "field": p.field, "column": p.column, "message": p.message}
            for p in problems
        ]
        return json.dumps(records, indent=2, ensure_ascii=False)
    if fmt == "github":
        lines = []
        for p in problems:
            where = [f"file={_escape_property(_shown_path(p.file))}"]
            if p.line is not None:
                where.append(f"line={p.line}")
            if p.field is not None:
                where.append(f"col={p.field}")
            title = f"archi3d validate: {p.column}" if p.column else "archi3d validate"
            where.append(f"title={_escape_property(title)}")
            lines.append(f"::error {','.join(where)}::{_escape_data(p.message)}")
        return "\n".join(lines)
    return "\n".join(str(p) for p in problems)


class TerminalProgress:
    """progress(phase, done, total) drawn on one line of a terminal: count, rate and time left."""

    def __init__(self, stream: TextIO, every: float = 0.1) -> None:
        self._stream = stream
        self._every = every
        self._phase = ""
        self._started = 0.0
        self._drawn = 0.0
        self._width = 0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self._phase:
            self.close()
            self._phase, self._started, self._drawn = phase, now, 0.0
        elif now - self._drawn < self._every and done < total:
            return
        self._drawn = now
        text = f"{phase}..."
        if total:
            elapsed = now - self._started
            rate = done / elapsed if elapsed > 0 else 0.0
            left = f", {(total - done) / rate:.0f} s left" if rate and done < total else ""
            text = f"{phase}: {done:,}/{total:,} ({rate:,.0f}/s{left})"
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)

    def close(self) -> None:
        """End the current line (the next output starts on a line of its own)."""
        if self._phase:
            self._stream.write("\n")
            self._stream.flush()
            self._phase, self._width = "", 0
