"""The builder the situation writers share: it writes a job's files and collects rows, log lines and expectations."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from archi3d.columns import MANIFEST_COLUMNS
from archi3d.demo.expectations import Expectation
from archi3d.demo.files import GLB, PREVIEW_PNGS
from archi3d.demo.jobs import IdSource, Job, Record, iso, random_job, table_record
from archi3d.progress import Progress

__all__ = ["WRITING_JOBS", "Builder"]

WRITING_JOBS = "writing demo jobs"

_MarkerStyle = Literal["reference", "json", "empty"]


@attrs.define
class Builder:
    """Writes one workspace's files and collects its table rows, manifest rows and log lines."""

    workspace: Path
    rng: random.Random
    base: dt.datetime
    ids: IdSource
    rows: list[Record] = attrs.field(factory=list)
    late_rows: list[Record] = attrs.field(factory=list)
    manifests: dict[str, list[Record]] = attrs.field(factory=dict)
    log_lines: list[tuple[dt.datetime, str]] = attrs.field(factory=list)
    fresh_markers: list[tuple[str, int]] = attrs.field(factory=list)
    expectations: list[Expectation] = attrs.field(factory=list)
    situation: str = ""
    progress: Progress | None = None
    jobs_expected: int = 0
    """How many jobs the workspace will have, for `progress`."""
    _folders: set[str] = attrs.field(factory=set)
    _jobs_made: int = 0

    def new_job(self, run_id: str, job_id: str = "", product_id: str = "") -> Job:
        self._jobs_made += 1
        if self.progress is not None and self._jobs_made % 500 == 0:
            self.progress(WRITING_JOBS, min(self._jobs_made, self.jobs_expected), self.jobs_expected)
        return random_job(self.rng, run_id, job_id or self.ids.hex_id(), self.base, product_id)

    def write(self, relative: str, data: bytes, mtime: dt.datetime) -> None:
        # Hot path (several files per job, 300k jobs in the benchmark): plain os calls, one folder check each.
        path = os.path.join(self.workspace, relative)
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        # O_EXCL: the workspace starts empty, so a file written twice is a bug in a situation writer.
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(handle, data)
            stamp = mtime.timestamp()
            os.utime(handle, (stamp, stamp))
        finally:
            os.close(handle)

    def marker(self, job: Job, kind: str, when: dt.datetime, style: _MarkerStyle = "reference") -> None:
        texts = {
            "reference": f"timestamp: {iso(when)}\npid: {job.pid}\n",
            "json": json.dumps({"timestamp": iso(when), "pid": job.pid}),
            "empty": "",
        }
        self.write(f"{job.state}.{kind}", texts[style].encode("utf-8"), when)

    def fresh_heartbeat(self, job: Job) -> None:
        """An .inprogress marker that must read as fresh when consolidate runs: written last, at the real time."""
        self.fresh_markers.append((f"{job.state}.inprogress", job.pid))

    def leftover_lock(self, job: Job) -> None:
        self.write(f"{job.state}.lock", b"", job.end)

    def error_file(self, job: Job, message: str, when: dt.datetime, frames: int = 1, tail: bytes = b"") -> None:
        self.write(f"{job.state}.error.txt", _error_text(message, frames).encode("utf-8") + tail, when)

    def object_file(self, relative: str, when: dt.datetime, data: bytes = GLB) -> str:
        self.write(relative, data, when)
        return relative

    def previews(self, job: Job, count: int) -> list[str]:
        paths = [f"{job.outputs}/preview_{n}.png" for n in range(1, count + 1)]
        for n, path in enumerate(paths):
            self.write(path, PREVIEW_PNGS[n], job.end)
        return paths

    def metadata(self, job: Job, job_id: str = "") -> None:
        document = {
            "run_id": job.run_id,
            "job_id": job_id or job.job_id,
            "algo": job.algo,
            "product_id": job.product_id,
        }
        self.write(f"{job.outputs}/metadata.json", json.dumps(document, indent=2).encode("utf-8"), job.end)

    def log_event(self, job: Job, event: str) -> None:
        record = {"event": event, "run_id": job.run_id, "job_id": job.job_id, "duration_s": job.duration_ms / 1000}
        self.log_lines.append((job.end, f"{iso(job.end)} {json.dumps(record, separators=(',', ':'))}"))

    def add_row(self, cells: Mapping[str, str]) -> None:
        self.rows.append(table_record(cells))

    def add_late_row(self, cells: Mapping[str, str]) -> None:
        """A row the table holds further down, after the run's other rows."""
        self.late_rows.append(table_record(cells))

    def add_manifest(self, job: Job) -> None:
        cells = job.manifest_cells()
        self.manifests.setdefault(job.run_id, []).append([cells[name] for name in MANIFEST_COLUMNS])

    def expect(self, job: Job, status: str, object_path: str = "", in_table: bool = True) -> None:
        self.expectations.append(Expectation(job.run_id, job.job_id, status, in_table, self.situation, object_path))


def _error_text(message: str, frames: int = 1) -> str:
    frame = '  File "archi3d/worker.py", line 212, in run_job\n    mesh = algo.generate(images)\n'
    return f"Error: {message}\n\nTraceback:\n{frame * frames}RuntimeError: {message}\n"
