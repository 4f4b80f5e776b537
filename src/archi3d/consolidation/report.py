"""The change report of a consolidate run (`--report FILE`): every change and conflict as JSON lines, to
review before a real run and to revert one afterwards."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from archi3d.atomic import write_text_atomic
from archi3d.consolidation.plan import Plan
from archi3d.csvcells import record_cells
from archi3d.csvrender import rendered_header
from archi3d.csvtable import BOM
from archi3d.reconcile import Conflict

__all__ = ["REPORT_VERSION", "report_records", "write_report"]

REPORT_VERSION = 1


def report_records(plan: Plan, jobs: Sequence[str], head: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The report's records: `head` first (with the table's header before and after), then, job by job,
    each row updated (its text before and after, then each changed cell with the rule that changed
    it), each duplicate row merged away (its full text and where it stood), each row inserted, and
    last every conflict."""
    table, groups, outcomes = plan.table, plan.groups, plan.outcomes
    header_before = table.data[: table.header_end]
    header_after = rendered_header(table, plan.added_columns) if plan.added_columns else header_before
    yield {
        **head,
        "type": "consolidate",
        "version": REPORT_VERSION,
        "bom": table.bom,
        "final_newline": table.data.endswith(b"\n"),
        "header_before": _text(header_before.removeprefix(BOM)),
        "header_after": _text(header_after.removeprefix(BOM)),
        "added_columns": list(plan.added_columns),
    }
    appended = iter(zip(plan.appended, plan.appended_lines))
    for job_id in jobs:
        outcome, indices = outcomes[job_id], groups.get(job_id, ())
        if outcome.record is not None and indices:
            first = indices[0]
            before = table.record(first)
            after = dict(zip(plan.header, record_cells(plan.replaced[first].decode("utf-8"))))
            line = table.lines[first]
            yield {
                "type": "row_updated",
                "job_id": job_id,
                "line": line,
                "before": _text(table.raw(first)),
                "after": _text(plan.replaced[first]),
            }
            reasons = dict(outcome.reasons)
            for column in plan.header:
                if before.get(column, "") != after.get(column, ""):
                    yield {
                        "type": "cell",
                        "job_id": job_id,
                        "line": line,
                        "column": column,
                        "before": before.get(column, ""),
                        "after": after.get(column, ""),
                        "rule": reasons.get(column, "reconciled"),
                    }
        for index in indices[1:]:
            text = _text(table.raw(index))
            yield {"type": "row_merged", "job_id": job_id, "line": table.lines[index], "index": index, "text": text}
        if outcome.record is not None and not indices:
            raw, line = next(appended)
            yield {"type": "row_inserted", "job_id": job_id, "line": line, "text": _text(raw)}
    for conflict in plan.conflicts:
        yield {"type": "conflict", **_conflict(conflict)}


def _conflict(conflict: Conflict) -> dict[str, Any]:
    return {**conflict.to_record(), "resolved": conflict.resolved}


def _text(data: bytes | memoryview) -> str:
    return bytes(data).decode("utf-8")


def write_report(path: str | os.PathLike[str], records: Iterator[dict[str, Any]]) -> int:
    """Write the records as JSON lines (one atomic write); returns how many were written."""
    lines = [json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n" for record in records]
    write_text_atomic(path, "".join(lines))
    return len(lines)
