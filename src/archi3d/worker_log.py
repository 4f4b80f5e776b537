"""The job events of one run in logs/worker.log: `<ISO8601 UTC> <single-line JSON>` lines, parsed as JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path

from archi3d.files import NOT_JSON
from archi3d.formats import UTC
from archi3d.model import LogEvent, Status, parse_timestamp

__all__ = ["MAX_DURATION", "WorkerLog", "parse_event"]

MAX_DURATION = 10 * 365 * 86400.0
_EVENTS = {"job_completed": Status.COMPLETED, "job_failed": Status.FAILED}
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=UTC)


def parse_event(line: str, run_id: str) -> tuple[str, LogEvent] | None:
    """The job and event of one worker.log line, if it is a job_completed/job_failed event of `run_id`.

    The line's time is the job's end; a duration_s that is not a plausible number of seconds is left out.
    """
    stamp, _, body = line.strip().partition(" ")
    try:
        record = json.loads(body)
        end = parse_timestamp(stamp)
    except NOT_JSON:
        return None
    if not isinstance(record, dict) or end is None or record.get("run_id") != run_id:
        return None
    status = _EVENTS.get(str(record.get("event")))
    job_id = record.get("job_id")
    if status is None or not isinstance(job_id, str):
        return None
    duration = record.get("duration_s")
    seconds = float(duration) if isinstance(duration, int | float) and 0 <= duration <= MAX_DURATION else None
    if seconds is not None and end - dt.timedelta(seconds=seconds) < _EARLIEST:
        seconds = None
    return job_id, LogEvent(status, end, seconds)


class WorkerLog:
    """The last job_completed/job_failed event of each job of one run."""

    def __init__(self, events: Mapping[str, LogEvent]) -> None:
        self._events = events

    @classmethod
    def read(cls, path: Path, run_id: str) -> WorkerLog:
        """The events of `run_id` in the log at `path` (none when it is absent or not a regular file)."""
        events: dict[str, LogEvent] = {}
        if not path.is_file():  # absent, or not a regular file that a read would not block on
            return cls(events)
        try:
            handle = open(path, encoding="utf-8", errors="replace")
        except OSError:
            return cls(events)
        with handle:
            for line in handle:
                if run_id not in line or "job_" not in line:  # most lines of other runs and events: not parsed
                    continue
                parsed = parse_event(line, run_id)
                if parsed is None:
                    continue
                job_id, event = parsed
                last = events.get(job_id)
                if last is None or last.end <= event.end:  # the latest time; the later line on a tie
                    events[job_id] = event
        return cls(events)

    def event(self, job_id: str) -> LogEvent | None:
        """The job's last event."""
        return self._events.get(job_id)
