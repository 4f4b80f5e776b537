"""The pure reconciler: (row, job, evidence, options, now) -> decision. No I/O, no clock, no logging."""

from __future__ import annotations

import datetime as dt
import enum
import operator
from collections.abc import Sequence
from typing import Any

import attrs

from archi3d.columns import GENERATIONS_COLUMNS, PATH_COLUMNS, PREVIEW_COLUMNS
from archi3d.model import Evidence, GenerationRow, Job, Status, format_timestamp
from archi3d.paths import to_posix

__all__ = [
    "DOWNGRADE_MESSAGE",
    "Conflict",
    "Decision",
    "Options",
    "StalePolicy",
    "heartbeat_status",
    "merge_duplicates",
    "merge_winner",
    "reconcile",
]

DOWNGRADED = "downgraded by consolidate"
DOWNGRADE_MESSAGE = f"missing generated.glb; {DOWNGRADED}"


class StalePolicy(enum.Enum):
    REQUEUE = "requeue"
    FAIL = "fail"
    KEEP = "keep"


@attrs.frozen
class Options:
    fix_status: bool = True
    heartbeat_timeout: float = 600.0
    stale_policy: StalePolicy = StalePolicy.REQUEUE


@attrs.frozen(slots=False)
class Conflict:
    """Evidence that disagrees with itself or with the CSV; `resolved` when a rule settled it."""

    job_id: str
    kind: str
    detail: str
    resolved: bool = True

    def to_record(self) -> dict[str, str]:
        return {"job_id": self.job_id, "kind": self.kind, "detail": self.detail}


@attrs.frozen(slots=False)
class Decision:
    """The reconciled row of one job and what was found on the way."""

    row: GenerationRow
    before: Status | None
    conflicts: tuple[Conflict, ...] = ()
    marker_mismatch_fixed: bool = False
    downgraded: bool = False
    missing_output: bool = False


def _t(moment: dt.datetime | None) -> str:
    return format_timestamp(moment) or "unknown time"


def _append(text: str, entry: str) -> str:
    return f"{text}; {entry}" if text else entry


def _base_row(row: GenerationRow | None, job: Job | None, run_id: str, job_id: str) -> GenerationRow:
    if row is not None:
        return row
    cells = job.row_cells() if job is not None else {"job_id": job_id}
    return GenerationRow.from_cells({**cells, "run_id": run_id, "status": Status.ENQUEUED.value})


_path_values = operator.attrgetter(*PATH_COLUMNS)


def _posix_paths(row: GenerationRow) -> GenerationRow:
    values: tuple[str, ...] = _path_values(row)
    if "\\" not in "".join(values):
        return row
    return row.evolve(**{column: to_posix(value) for column, value in zip(PATH_COLUMNS, values) if "\\" in value})


@attrs.frozen(slots=False)
class _Verdict:
    status: Status
    reason: str
    error: str = ""
    downgraded: bool = False
    from_markers: bool = False


def _is_fresh(started: dt.datetime | None, options: Options, now: dt.datetime) -> bool:
    """Whether an .inprogress marker of that time is a live heartbeat."""
    return started is not None and (now - started).total_seconds() < options.heartbeat_timeout


def heartbeat_status(csv: Status, started: dt.datetime | None, options: Options, now: dt.datetime) -> Status:
    """The status a heartbeat with nothing terminal beside it gives a row of status `csv` (rules 3 and 4).

    The one place the rules live: reconcile and the fast path (triage) both ask it.
    """
    if _is_fresh(started, options, now):
        return Status.RUNNING
    return {StalePolicy.REQUEUE: Status.ENQUEUED, StalePolicy.FAIL: Status.FAILED}.get(options.stale_policy, csv)


def _verdict(row: GenerationRow, ev: Evidence, options: Options, now: dt.datetime, out: list[Conflict]) -> _Verdict:
    """The status table of the spec, first match wins, then the override and monotonicity."""
    csv = row.status
    job = row.job_id
    has_object = ev.has_object
    started = ev.inprogress_at

    def heartbeat() -> str:
        return f"{'fresh' if _is_fresh(started, options, now) else 'stale'} .inprogress at {_t(started)}"

    if csv is Status.COMPLETED and has_object and ev.has_inprogress:
        out.append(Conflict(job, "rerun_beside_completed", f"{heartbeat()} beside a completed row with its object"))
    if ev.has_completed and ev.has_failed:
        out.append(Conflict(job, "completed_and_failed_markers", ".completed and .failed markers both present"))
    if ev.has_completed and not has_object:
        why = "its folder is ruled out by metadata.json" if ev.metadata_mismatch else "missing or empty"
        out.append(Conflict(job, "completed_without_object", f".completed marker ({_t(ev.completed_at)}) but no usable object ({why})"))
    if ev.object_candidates:
        out.append(
            Conflict(job, "several_objects", f"candidates {', '.join(ev.object_candidates)}; took {ev.object_path}")
        )
    if ev.metadata_mismatch is not None:
        out.append(Conflict(job, "metadata_mismatch", f"{ev.metadata_mismatch}; its folder is not evidence"))

    if csv is Status.COMPLETED and not has_object:
        cause = ev.metadata_mismatch or "object missing or empty"
        error = f"{ev.metadata_mismatch}; {DOWNGRADED}" if ev.metadata_mismatch else DOWNGRADE_MESSAGE
        return _Verdict(Status.FAILED, f"completed row without its object ({cause})", error, downgraded=True)
    if ev.has_completed and has_object:
        return _Verdict(Status.COMPLETED, f".completed marker at {_t(ev.completed_at)} and {ev.object_path}", from_markers=True)
    if ev.has_failed:
        if csv is Status.COMPLETED:
            out.append(Conflict(job, "failed_beside_completed", f".failed marker at {_t(ev.failed_at)}: the latest attempt failed"))
        return _Verdict(Status.FAILED, f".failed marker at {_t(ev.failed_at)}", from_markers=True)
    if ev.has_inprogress:
        if csv is Status.COMPLETED:
            return _Verdict(csv, "")
        if csv is Status.FAILED and DOWNGRADED in row.error_msg:
            # Was completed: a heartbeat alone must not take it lower than the downgrade did.
            out.append(Conflict(job, "rerun_beside_downgraded", f"{heartbeat()} beside a row downgraded from completed"))
            return _Verdict(csv, "")
        implied = heartbeat_status(csv, started, options, now)
        if implied is csv:
            return _Verdict(csv, "")
        if implied is Status.RUNNING:
            return _Verdict(implied, f"fresh heartbeat: .inprogress at {_t(started)}", from_markers=True)
        stale = f"stale heartbeat: .inprogress at {_t(started)}, older than {options.heartbeat_timeout:g} s"
        if implied is Status.ENQUEUED:
            return _Verdict(implied, f"{stale}; requeued", from_markers=True)
        return _Verdict(implied, f"{stale}; failed", f"{stale}; failed by consolidate", from_markers=True)
    return _Verdict(csv, "")


def _time_changes(row: GenerationRow, status: Status, ev: Evidence) -> dict[str, Any]:
    if status not in (Status.COMPLETED, Status.FAILED):
        return {}
    start, end = row.generation_start, row.generation_end
    if start is None or end is None:
        event = ev.log_event if ev.log_event is not None and ev.log_event.status is status else None
        found_end = event.end if event else max(
            (t for t in (ev.completed_at, ev.failed_at, ev.object_mtime) if t is not None), default=None
        )
        found_start = (
            event.end - dt.timedelta(seconds=event.duration_s)
            if event and event.duration_s is not None
            else min((*ev.marker_times, *((ev.earliest_output_at,) if ev.earliest_output_at else ())), default=None)
        )
        if end is None:
            end = found_end if start is None or found_end is None else max(found_end, start)
        if start is None:
            start = found_start if end is None or found_start is None else min(found_start, end)
    duration = row.generation_duration_s
    if duration is None and start is not None and end is not None:
        duration = round((end - start).total_seconds(), 3)
    if (start, end, duration) == (row.generation_start, row.generation_end, row.generation_duration_s):
        return {}
    return {"generation_start": start, "generation_end": end, "generation_duration_s": duration}


def _path_changes(row: GenerationRow, ev: Evidence) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if ev.object_path and row.gen_object_path != ev.object_path:
        changes["gen_object_path"] = ev.object_path
    for slot, column in enumerate(PREVIEW_COLUMNS):
        recorded = getattr(row, column)
        if recorded != ev.previews[slot] and (not recorded or recorded not in ev.existing_paths):
            changes[column] = ev.previews[slot]
    return changes


def reconcile(
    row: GenerationRow | None,
    job: Job | None,
    evidence: Evidence,
    options: Options,
    now: dt.datetime,
    run_id: str,
    job_id: str,
) -> Decision:
    """Decide the row of one job from its CSV row (or manifest job) and the disk's evidence."""
    before = row.status if row is not None else None
    current = _posix_paths(_base_row(row, job, run_id, job_id))
    conflicts: list[Conflict] = []
    verdict = _verdict(current, evidence, options, now, conflicts)
    missing_output = (current.status is Status.COMPLETED or evidence.has_completed) and not evidence.has_object
    changed = verdict.status is not current.status
    status, error = current.status, current.error_msg
    changes: dict[str, Any] = {}
    if changed and not options.fix_status:
        conflicts.append(
            Conflict(job_id, "status_not_fixed", f"would set {verdict.status} ({verdict.reason})", resolved=False)
        )
    elif changed:
        note = f"consolidate: {current.status} -> {verdict.status}: {verdict.reason}"
        if verdict.error:
            error = _append(error, verdict.error) if verdict.error not in error else error
        status = verdict.status
        changes.update(status=status, notes=_append(current.notes, note), error_msg=error)
    if status is Status.FAILED and not error and evidence.error_text:
        changes["error_msg"] = evidence.error_text
    changes.update(_path_changes(current, evidence))
    changes.update(_time_changes(current, status, evidence))
    applied = changed and options.fix_status
    return Decision(
        row=current.evolve(**changes) if changes else current,
        before=before,
        conflicts=tuple(conflicts),
        marker_mismatch_fixed=applied and verdict.from_markers,
        downgraded=applied and verdict.downgraded,
        missing_output=missing_output,
    )


def _path_exists(value: str, evidence: Evidence) -> bool:
    return bool(value) and to_posix(value) in evidence.existing_paths


def merge_winner(rows: Sequence[GenerationRow]) -> GenerationRow:
    """The row of highest status precedence; the first of them on a tie."""
    return max(rows, key=lambda r: r.status.precedence)


def merge_duplicates(rows: Sequence[GenerationRow], evidence: Evidence) -> tuple[GenerationRow, Conflict]:
    """One row from several rows of one job: highest status wins, then column by column.

    Non-empty beats empty, for paths an existing file beats a missing one, error_msg comes from the
    winner only. Every cell keeps the text of the row it came from; the merged row stands at the first's line.
    """
    winner = merge_winner(rows)
    ordered = [winner, *(r for r in rows if r is not winner)]
    first = rows[0]
    cells: dict[str, str] = {}
    taken: dict[str, list[str]] = {}
    columns = [*GENERATIONS_COLUMNS, *dict.fromkeys(c for r in rows for c in r.extra)]
    for column in columns:
        values = [r.source.get(column, r.cell(column)) for r in ordered]
        if column == "error_msg":
            index = 0
        elif column in PATH_COLUMNS:
            existing = next((i for i, v in enumerate(values) if _path_exists(v, evidence)), None)
            index = existing if existing is not None else next((i for i, v in enumerate(values) if v), 0)
        else:
            index = next((i for i, v in enumerate(values) if v), 0)
        cells[column] = values[index]
        source = ordered[index]
        if source is not first and values[index] != first.source.get(column, ""):
            taken.setdefault(f"line {source.line}", []).append(column)
    merged = GenerationRow.from_cells(cells, line=first.line)
    lines = ", ".join(str(r.line) for r in rows)
    detail = f"rows at lines {lines} merged; winner line {winner.line} ({winner.status})"
    if taken:
        detail += "; " + "; ".join(f"from {where}: {', '.join(cols)}" for where, cols in taken.items())
    return merged, Conflict(first.job_id, "duplicate_rows", detail)
