"""The job events of one run in logs/worker.log: `<ISO8601 UTC> <single-line JSON>` lines, parsed as JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from pathlib import Path

from archi3d.files import NOT_JSON
from archi3d.formats import UTC
from archi3d.model import LogEvent, Status, parse_timestamp

__all__ = ["MAX_DURATION", "WorkerLog"]

MAX_DURATION = 10 * 365 * 86400.0
_EVENTS = {"job_completed": Status.COMPLETED, "job_failed": Status.FAILED}
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=UTC)


_Record = tuple[str, str, float | None]
"""A job event as read: its line's time, the event's name, and its duration_s when a plausible number."""


def _job_record(stamp: str, body: str, run_id: str) -> tuple[str, _Record] | None:
    """The job and record of a line (its time and body), if it is a job event of `run_id`."""
    try:
        record = json.loads(body)
    except NOT_JSON:
        return None
    if not isinstance(record, dict) or record.get("run_id") != run_id or record.get("event") not in _EVENTS:
        return None
    job_id, duration = record.get("job_id"), record.get("duration_s")
    seconds = float(duration) if isinstance(duration, int | float) and 0 <= duration <= MAX_DURATION else None
    return (job_id, (stamp, record["event"], seconds)) if isinstance(job_id, str) else None


def _event(record: _Record) -> LogEvent | None:
    """The event a record makes; the line's time is the job's end. A duration reaching before 1900 is left out."""
    stamp, event, seconds = record
    try:
        end = parse_timestamp(stamp)
    except ValueError:
        return None
    if end is None:
        return None
    if seconds is not None and end - dt.timedelta(seconds=seconds) < _EARLIEST:
        seconds = None
    return LogEvent(_EVENTS[event], end, seconds)


class WorkerLog:
    """The job_completed/job_failed events of one run, filed by job when read; a job's are made into
    events when it is asked for (most jobs of a run never are)."""

    def __init__(self, records: Mapping[str, tuple[_Record, ...]]) -> None:
        self._records = records

    @classmethod
    def read(cls, path: Path, run_id: str, jobs: Collection[str] | None = None) -> WorkerLog:
        """The job events of `run_id` in the log at `path` (none when it is absent or not a regular file);
        `jobs`: of those jobs only."""
        # Tuples of text and numbers, which the collector stops tracking: a run's log has a line per job.
        records: dict[str, tuple[_Record, ...]] = {}
        if not path.is_file():  # absent, or not a regular file that a read would not block on
            return cls(records)
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if run_id not in line or "job_" not in line:  # lines of other runs and events: not parsed
                        continue
                    if jobs is not None and not any(job in line for job in jobs):
                        continue
                    stamp, _, body = line.strip().partition(" ")
                    found = _job_record(stamp, body, run_id)
                    if found is not None:
                        job_id, record = found
                        records[job_id] = (*records.get(job_id, ()), record)
        except OSError:
            return cls({})  # a log that cannot be read has no events to give
        return cls(records)

    def events(self, job_id: str) -> list[LogEvent]:
        """Every job_completed/job_failed event of the job, in the log's order."""
        return [event for record in self._records.get(job_id, ()) if (event := _event(record)) is not None]

    def event(self, job_id: str) -> LogEvent | None:
        """The job's last event (the latest time; the later line on a tie)."""
        last: LogEvent | None = None
        for event in self.events(job_id):
            if last is None or last.end <= event.end:
                last = event
        return last
