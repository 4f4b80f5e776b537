"""One writer per situation: the files, table rows and expectation that put one job of the main run in it."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping

from archi3d.demo.builder import Builder
from archi3d.demo.files import NOT_A_PNG, PREVIEW_PNGS
from archi3d.demo.jobs import Job, completed_row, enqueued_row, failed_row, running_row
from archi3d.demo.situations import CLEAN, SITUATIONS

__all__ = ["WRITERS", "SituationWriter"]

_ERRORS = ("CUDA out of memory", "mesh extraction produced no faces", "API timeout after 300 s", "invalid input image")


def _clean_completed(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    previews = b.previews(job, 1 + nth % 3)
    b.marker(job, "completed", job.end)
    if nth % 2 == 0:
        b.metadata(job)
    b.log_event(job, "job_completed")
    b.add_row(completed_row(job, obj, previews))
    b.expect(job, "completed", obj)


def _crashed_worker_completed(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.reference_object, job.end)
    b.previews(job, 1 + nth % 3)
    b.marker(job, "completed", job.end)
    b.leftover_lock(job)
    if nth == 0:
        b.write(f"{job.state}.completed.tmp", b"", job.end)
    b.log_event(job, "job_completed")
    b.add_row(enqueued_row(job))
    b.expect(job, "completed", obj)


def _crashed_worker_failed(b: Builder, job: Job, nth: int) -> None:
    b.marker(job, "failed", job.end)
    b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.end)
    b.leftover_lock(job)
    b.log_event(job, "job_failed")
    b.add_row(enqueued_row(job))
    b.expect(job, "failed")


def _failed(b: Builder, job: Job, nth: int) -> None:
    message = _ERRORS[nth % len(_ERRORS)]
    b.marker(job, "failed", job.end)
    b.error_file(job, message, job.end)
    b.log_event(job, "job_failed")
    b.add_row(failed_row(job, message))
    b.expect(job, "failed")


def _failed_error_from_file(b: Builder, job: Job, nth: int) -> None:
    """A failed row without error_msg takes it from error.txt; the first one is long and not clean UTF-8."""
    b.marker(job, "failed", job.end)
    if nth == 0:
        b.error_file(job, "worker ran out of patience", job.end, frames=40, tail=b"\xff\xfe trailing bytes\n")
    else:
        b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.end)
    b.add_row(failed_row(job, ""))
    b.expect(job, "failed")


def _pending(b: Builder, job: Job, nth: int) -> None:
    b.add_row(enqueued_row(job))
    b.expect(job, "enqueued")


def _stale_heartbeat(b: Builder, job: Job, nth: int) -> None:
    beat = b.base - dt.timedelta(hours=2 + nth % 24)
    b.marker(job, "inprogress", beat, "json" if nth % 4 == 3 else "reference")
    b.leftover_lock(job)
    b.add_row(running_row(job))
    b.expect(job, "enqueued")


def _fresh_heartbeat(b: Builder, job: Job, nth: int) -> None:
    b.fresh_heartbeat(job)
    b.add_row(running_row(job) if nth % 2 == 0 else enqueued_row(job))
    b.expect(job, "running")


def _completed_missing_object(b: Builder, job: Job, nth: int) -> None:
    # The object and its previews were deleted (or never synced); half still have their .completed marker.
    if nth % 2 == 0:
        b.marker(job, "completed", job.end)
    previews = [f"{job.outputs}/preview_1.png"]
    b.add_row(completed_row(job, job.generated_object, previews))
    b.expect(job, "failed", job.generated_object)


def _completed_empty_object(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end, data=b"")
    previews = b.previews(job, 1)
    b.marker(job, "completed", job.end)
    b.add_row(completed_row(job, obj, previews))
    b.expect(job, "failed", obj)


def _duplicate_rows(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    previews = b.previews(job, 2)
    b.marker(job, "completed", job.end)
    complete = completed_row(job, obj, previews)
    stale = running_row(job) if nth % 2 == 0 else enqueued_row(job)
    first, second = (complete, stale) if nth % 2 == 0 else (stale, complete)
    b.add_row(first)
    b.add_late_row(second)
    b.expect(job, "completed", obj)


def _manifest_only_with_evidence(b: Builder, job: Job, nth: int) -> None:
    if nth % 2 == 0:
        obj = b.object_file(job.reference_object, job.end)
        b.marker(job, "completed", job.end)
        b.log_event(job, "job_completed")
        b.expect(job, "completed", obj)
    else:
        b.marker(job, "failed", job.end)
        b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.end)
        b.log_event(job, "job_failed")
        b.expect(job, "failed")


def _manifest_only_no_evidence(b: Builder, job: Job, nth: int) -> None:
    b.expect(job, "enqueued")


def _orphan(b: Builder, job: Job, nth: int) -> None:
    if nth % 2 == 0:
        b.object_file(job.generated_object, job.end)
        b.marker(job, "completed", job.end)
    else:
        b.marker(job, "failed", job.end)
        b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.end)
    b.expect(job, "", in_table=False)


def _invalid_previews(b: Builder, job: Job, nth: int) -> None:
    """Only preview_1 is a PNG; preview_2 is empty and preview_3 lacks the signature: neither may be recorded."""
    obj = b.object_file(job.generated_object, job.end)
    b.write(f"{job.outputs}/preview_1.png", PREVIEW_PNGS[0], job.end)
    b.write(f"{job.outputs}/preview_2.png", b"", job.end)
    b.write(f"{job.outputs}/preview_3.png", NOT_A_PNG, job.end)
    b.marker(job, "completed", job.end)
    b.add_row(completed_row(job, obj, []))
    b.expect(job, "completed", obj)


def _redo_leftover_error(b: Builder, job: Job, nth: int) -> None:
    """`--redo` removed .failed but left the old error.txt; the completed row must not take its message."""
    earlier = job.start - dt.timedelta(days=1)
    b.error_file(job, _ERRORS[nth % len(_ERRORS)], earlier)
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "completed", job.end)
    if nth % 2 == 0:
        b.add_row(completed_row(job, obj, []))
    else:
        b.log_event(job, "job_completed")
        b.add_row(enqueued_row(job))
    b.expect(job, "completed", obj)


def _legacy_object_path(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(f"runs/{job.run_id}/outputs/{job.algo}/{job.job_id}.glb", job.end)
    b.marker(job, "completed", job.end)
    b.add_row(completed_row(job, obj, []))
    b.expect(job, "completed", obj)


def _windows_backslash_path(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    previews = b.previews(job, 1)
    b.marker(job, "completed", job.end)
    row = completed_row(job, obj.replace("/", "\\"), [p.replace("/", "\\") for p in previews])
    b.add_row(row)
    b.expect(job, "completed", obj)


def _numeric_looking_ids(b: Builder, job: Job, nth: int) -> None:
    if nth % 2 == 0:
        _clean_completed(b, job, nth)
    else:
        _crashed_worker_completed(b, job, nth)


def _json_marker(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "completed", job.end, "json")
    b.add_row(enqueued_row(job))
    b.expect(job, "completed", obj)


def _empty_marker(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "completed", job.end, "empty")
    b.add_row(enqueued_row(job))
    b.expect(job, "completed", obj)


def _metadata_mismatch(b: Builder, job: Job, nth: int) -> None:
    """The folder holds another job's files (a copy): nothing in it is evidence for this job."""
    obj = b.object_file(job.generated_object, job.end)
    b.metadata(job, job_id=b.ids.hex_id())
    b.marker(job, "completed", job.end)
    b.add_row(completed_row(job, obj, []))
    b.expect(job, "failed", obj)


def _failed_marker_beside_completed_row(b: Builder, job: Job, nth: int) -> None:
    """A re-run that failed after the row was completed: the latest attempt wins."""
    obj = b.object_file(job.generated_object, job.start)
    b.marker(job, "failed", job.end)
    b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.end)
    b.add_row(completed_row(job, obj, []))
    b.expect(job, "failed", obj)


def _rerun_under_way(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    previews = b.previews(job, 1)
    b.marker(job, "completed", job.end)
    b.fresh_heartbeat(job)
    b.add_row(completed_row(job, obj, previews))
    b.expect(job, "completed", obj)


def _several_candidate_objects(b: Builder, job: Job, nth: int) -> None:
    # The older candidate sorts last by name, so only picking by time finds the right one.
    b.object_file(f"{job.outputs}/attempt_1.glb", job.start - dt.timedelta(hours=1))
    obj = b.object_file(job.reference_object, job.end)
    b.marker(job, "completed", job.end)
    b.add_row(enqueued_row(job))
    b.expect(job, "completed", obj)


def _completed_and_failed_markers(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "failed", job.start - dt.timedelta(hours=1))
    b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.start - dt.timedelta(hours=1))
    b.marker(job, "completed", job.end)
    b.add_row(enqueued_row(job))
    b.expect(job, "completed", obj)


def _not_in_manifest(b: Builder, job: Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "completed", job.end)
    b.log_event(job, "job_completed")
    b.add_row(enqueued_row(job))
    b.expect(job, "completed", obj)


SituationWriter = Callable[[Builder, Job, int], None]


def _object_changed(b: Builder, job: Job, nth: int) -> None:
    """A completed job whose object was overwritten after consolidate recorded its hash."""
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "completed", job.end)
    b.log_event(job, "job_completed")
    older = b"glTF an earlier version of this object"
    row = completed_row(job, obj, [])
    row.update(gen_object_sha256=hashlib.sha256(older).hexdigest(), gen_object_bytes=str(len(older)))
    b.add_row(row)
    b.expect(job, "completed", obj)


WRITERS: Mapping[str, SituationWriter] = {
    CLEAN: _clean_completed,
    "crashed_worker_completed": _crashed_worker_completed,
    "crashed_worker_failed": _crashed_worker_failed,
    "failed": _failed,
    "failed_error_from_file": _failed_error_from_file,
    "pending": _pending,
    "stale_heartbeat": _stale_heartbeat,
    "fresh_heartbeat": _fresh_heartbeat,
    "completed_missing_object": _completed_missing_object,
    "completed_empty_object": _completed_empty_object,
    "duplicate_rows": _duplicate_rows,
    "manifest_only_with_evidence": _manifest_only_with_evidence,
    "manifest_only_no_evidence": _manifest_only_no_evidence,
    "orphan": _orphan,
    "invalid_previews": _invalid_previews,
    "redo_leftover_error": _redo_leftover_error,
    "legacy_object_path": _legacy_object_path,
    "windows_backslash_path": _windows_backslash_path,
    "numeric_looking_ids": _numeric_looking_ids,
    "json_marker": _json_marker,
    "empty_marker": _empty_marker,
    "metadata_mismatch": _metadata_mismatch,
    "failed_marker_beside_completed_row": _failed_marker_beside_completed_row,
    "rerun_under_way": _rerun_under_way,
    "several_candidate_objects": _several_candidate_objects,
    "completed_and_failed_markers": _completed_and_failed_markers,
    "not_in_manifest": _not_in_manifest,
    "object_changed": _object_changed,
}
assert set(WRITERS) == set(SITUATIONS)
