"""The job events of one run in logs/worker.log: `<ISO8601 UTC> <single-line JSON>` lines, parsed as JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from archi3d.files import NOT_JSON
from archi3d.formats import UTC
from archi3d.model import LogEvent, Status, parse_timestamp

__all__ = ["MAX_DURATION", "WorkerLog"]

MAX_DURATION = 10 * 365 * 86400.0
_EVENTS = {"job_completed": Status.COMPLETED, "job_failed": Status.FAILED}
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=UTC)


def _job_record(body: str, run_id: str) -> tuple[str, dict[str, Any]] | None:
    """The job and JSON record of a line's body, if it is a job event of `run_id`."""
    try:
        record = json.loads(body)
    except NOT_JSON:
        return None
    if not isinstance(record, dict) or record.get("run_id") != run_id or record.get("event") not in _EVENTS:
        return None
    job_id = record.get("job_id")
    return (job_id, record) if isinstance(job_id, str) else None


def _event(stamp: str, record: dict[str, Any]) -> tuple[str, LogEvent] | None:
    """The event a job record and its line's time make; the time is the job's end.

    A duration_s that is not a plausible number of seconds is left out.
    """
    try:
        end = parse_timestamp(stamp)
    except ValueError:
        return None
    if end is None:
        return None
    duration = record.get("duration_s")
    seconds = float(duration) if isinstance(duration, int | float) and 0 <= duration <= MAX_DURATION else None
    if seconds is not None and end - dt.timedelta(seconds=seconds) < _EARLIEST:
        seconds = None
    return record["job_id"], LogEvent(_EVENTS[record["event"]], end, seconds)


class WorkerLog:
    """The job_completed/job_failed events of one run, filed by job when read; a job's are made into
    events when it is asked for (most jobs of a run never are)."""

    def __init__(self, records: Mapping[str, list[tuple[str, dict[str, Any]]]]) -> None:
        self._records = records

    @classmethod
    def read(cls, path: Path, run_id: str, jobs: Collection[str] | None = None) -> WorkerLog:
        """The job events of `run_id` in the log at `path` (none when it is absent or not a regular file);
        `jobs`: of those jobs only."""
        records: dict[str, list[tuple[str, dict[str, Any]]]] = {}
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
                    found = _job_record(body, run_id)
                    if found is not None:
                        records.setdefault(found[0], []).append((stamp, found[1]))
        except OSError:
            return cls({})  # a log that cannot be read has no events to give
        return cls(records)

    def events(self, job_id: str) -> list[LogEvent]:
        """Every job_completed/job_failed event of the job, in the log's order."""
        return [found[1] for stamp, record in self._records.get(job_id, ()) if (found := _event(stamp, record))]

    def event(self, job_id: str) -> LogEvent | None:
        """The job's last event (the latest time; the later line on a tie)."""
        last: LogEvent | None = None
        for stamp, record in self._records.get(job_id, ()):
            found = _event(stamp, record)
            if found is not None and (last is None or last.end <= found[1].end):
                last = found[1]
        return last
