"""The pure reconciler: (row, job, evidence, options, now) -> decision. No I/O, no clock, no logging."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Mapping
from typing import Any

import attrs

from archi3d.columns import PATH_COLUMNS, PREVIEW_COLUMNS
from archi3d.model import Evidence, GenerationRow, Job, Status, TimeEvidence, format_timestamp
from archi3d.paths import to_posix
from archi3d.rules import (
    DOWNGRADE_MESSAGE,
    DOWNGRADED,
    Judgement,
    Options,
    Rule,
    Signals,
    is_fresh,
    judge,
    takes_error_text,
    times_settled,
)

__all__ = ["Conflict", "Decision", "reconcile", "signals_of"]


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
    rule: Rule
    conflicts: tuple[Conflict, ...] = ()
    marker_mismatch_fixed: bool = False
    downgraded: bool = False
    missing_output: bool = False
    object_changed: bool = False
    """The object the row recorded a hash of is not that file any more."""
    reasons: Mapping[str, str] = attrs.field(factory=dict)
    """Why each column of the row changes: the rule (status rules by name) or the kind of fix."""


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


def _posix_paths(row: GenerationRow) -> dict[str, str]:
    """The path cells that hold a backslash, written as POSIX paths."""
    values: tuple[str, ...] = _path_values(row)
    if "\\" not in "".join(values):
        return {}
    return {column: to_posix(value) for column, value in zip(PATH_COLUMNS, values) if "\\" in value}


def signals_of(row: GenerationRow, evidence: Evidence) -> Signals:
    """What the status rules look at, for a typed row and its evidence."""
    return Signals(
        csv=row.status,
        markers=evidence.markers,
        has_object=evidence.has_object,
        several_objects=bool(evidence.object_candidates),
        metadata_mismatch=evidence.metadata_mismatch is not None,
        downgraded=DOWNGRADED in row.error_msg,
        inprogress_at=evidence.inprogress_at,
    )


def _heartbeat(ev: Evidence, options: Options, now: dt.datetime) -> str:
    return f"{'fresh' if is_fresh(ev.inprogress_at, options, now) else 'stale'} .inprogress at {_t(ev.inprogress_at)}"


def _conflict_detail(kind: str, ev: Evidence, options: Options, now: dt.datetime) -> str:
    if kind == "rerun_beside_completed":
        return f"{_heartbeat(ev, options, now)} beside a completed row with its object"
    if kind == "completed_and_failed_markers":
        return ".completed and .failed markers both present"
    if kind == "completed_without_object":
        why = "its folder is ruled out by metadata.json" if ev.metadata_mismatch else "missing or empty"
        return f".completed marker ({_t(ev.completed_at)}) but no usable object ({why})"
    if kind == "several_objects":
        return f"candidates {', '.join(ev.object_candidates)}; took {ev.object_path}"
    if kind == "metadata_mismatch":
        return f"{ev.metadata_mismatch}; its folder is not evidence"
    if kind == "failed_beside_completed":
        return f".failed marker at {_t(ev.failed_at)}: the latest attempt failed"
    assert kind == "rerun_beside_downgraded", kind
    return f"{_heartbeat(ev, options, now)} beside a row downgraded from completed"


def _reason(judged: Judgement, ev: Evidence, options: Options) -> tuple[str, str]:
    """Why the status changes (for notes) and what error_msg then says, if anything."""
    if judged.rule is Rule.DOWNGRADE:
        if ev.metadata_mismatch:
            return f"completed row without its object ({ev.metadata_mismatch})", f"{ev.metadata_mismatch}; {DOWNGRADED}"
        return "completed row without its object (object missing or empty)", DOWNGRADE_MESSAGE
    if judged.rule is Rule.COMPLETED:
        return f".completed marker at {_t(ev.completed_at)} and {ev.object_path}", ""
    if judged.rule is Rule.FAILED:
        return f".failed marker at {_t(ev.failed_at)}", ""
    if judged.rule is Rule.FRESH_HEARTBEAT:
        return f"fresh heartbeat: .inprogress at {_t(ev.inprogress_at)}", ""
    assert judged.rule is Rule.STALE_HEARTBEAT, judged.rule
    stale = f"stale heartbeat: .inprogress at {_t(ev.inprogress_at)}, older than {options.heartbeat_timeout:g} s"
    if judged.status is Status.ENQUEUED:
        return f"{stale}; requeued", ""
    return f"{stale}; failed", f"{stale}; failed by consolidate"


def _time_changes(row: GenerationRow, status: Status, ev: Evidence) -> dict[str, Any]:
    start, end, duration = row.generation_start, row.generation_end, row.generation_duration_s
    if times_settled(status, start is not None, end is not None, duration is not None):
        return {}
    if start is None or end is None:
        if ev.times is None:
            raise ValueError(f"{row.job_id}: time evidence was not gathered for a row without its start or end")
        start, end = _found_times(start, end, status, ev, ev.times)
    if duration is None and start is not None and end is not None:
        duration = round((end - start).total_seconds(), 3)
    if (start, end, duration) == (row.generation_start, row.generation_end, row.generation_duration_s):
        return {}
    return {"generation_start": start, "generation_end": end, "generation_duration_s": duration}


def _found_times(
    start: dt.datetime | None, end: dt.datetime | None, status: Status, ev: Evidence, times: TimeEvidence
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The missing start and end: the worker.log event first, else marker and file times; start never after end."""
    event = times.log_event if times.log_event is not None and times.log_event.status is status else None
    if event is not None:
        found_end: dt.datetime | None = event.end
    else:
        found_end = max((t for t in (ev.completed_at, ev.failed_at, times.object_mtime) if t is not None), default=None)
    if event is not None and event.duration_s is not None:
        found_start: dt.datetime | None = event.end - dt.timedelta(seconds=event.duration_s)
    else:
        outputs = (times.earliest_output_at,) if times.earliest_output_at else ()
        found_start = min((*ev.marker_times, *outputs), default=None)
    if end is None:
        end = found_end if start is None or found_end is None else max(found_end, start)
    if start is None:
        start = found_start if end is None or found_start is None else min(found_start, end)
    return start, end


def _hash_changes(row: GenerationRow, status: Status, ev: Evidence) -> tuple[dict[str, Any], Conflict | None]:
    """A completed job's object hash and size, when the evidence hashed it; a conflict if it changed."""
    if status is not Status.COMPLETED or not ev.has_object or ev.object_sha256 is None:
        return {}, None
    recorded = (row.gen_object_sha256, row.gen_object_bytes)
    if recorded == (ev.object_sha256, ev.object_size):
        return {}, None
    changes: dict[str, Any] = {"gen_object_sha256": ev.object_sha256, "gen_object_bytes": ev.object_size}
    if not row.gen_object_sha256 or row.gen_object_sha256 == ev.object_sha256:
        return changes, None
    detail = (
        f"{ev.object_path} is not the object whose hash was recorded: sha256 {row.gen_object_sha256}"
        f" ({row.gen_object_bytes} bytes) then, {ev.object_sha256} ({ev.object_size} bytes) now;"
        " metrics computed on the old file describe another object"
    )
    return changes, Conflict(row.job_id, "object_changed", detail)


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
    base = _base_row(row, job, run_id, job_id)
    posix: dict[str, Any] = _posix_paths(base)
    current = attrs.evolve(base, **posix) if posix else base
    judged = judge(signals_of(current, evidence), options, now)
    conflicts = [Conflict(job_id, kind, _conflict_detail(kind, evidence, options, now)) for kind in judged.conflicts]
    changed = judged.status is not current.status
    status, error = current.status, current.error_msg
    changes: dict[str, Any] = {}
    reasons = dict.fromkeys(posix, "posix_paths")

    def take(new: Mapping[str, Any], why: str) -> None:
        changes.update(new)
        reasons.update(dict.fromkeys(new, why))

    if changed:
        reason, new_error = _reason(judged, evidence, options)
        if not options.fix_status:
            detail = f"would set {judged.status} ({reason})"
            conflicts.append(Conflict(job_id, "status_not_fixed", detail, resolved=False))
        else:
            note = f"consolidate: {current.status} -> {judged.status}: {reason}"
            if new_error and new_error not in error:
                error = _append(error, new_error)
            status = judged.status
            take(
                {"status": status, "notes": _append(current.notes, note), "error_msg": error}, judged.rule.name.lower()
            )
    if takes_error_text(status, error) and evidence.error_text:
        take({"error_msg": evidence.error_text}, "error_txt")
    take(_path_changes(current, evidence), "paths")
    take(_time_changes(current, status, evidence), "times")
    hashed, object_changed = _hash_changes(current, status, evidence)
    take(hashed, "object_hash")
    if object_changed is not None:
        conflicts.append(object_changed)
        note = f"consolidate: object changed: sha256 {current.gen_object_sha256} -> {evidence.object_sha256}"
        take({"notes": _append(changes.get("notes", current.notes), note)}, "object_changed")
    applied = changed and options.fix_status
    return Decision(
        row=attrs.evolve(current, **changes) if changes else current,
        before=before,
        rule=judged.rule,
        conflicts=tuple(conflicts),
        marker_mismatch_fixed=applied and judged.rule.from_markers,
        downgraded=applied and judged.rule is Rule.DOWNGRADE,
        missing_output=(current.status is Status.COMPLETED or "completed" in evidence.markers)
        and not evidence.has_object,
        object_changed=object_changed is not None,
        reasons=reasons,
    )
