"""Small helpers that lay out real archi3d workspaces on disk for the consolidate and CLI tests.

Everything is written the way the reference archi3D worker (or a person) would write it: plain
bytes, utf-8-sig CSV, reference-style markers, `<ISO8601> <json>` log lines. Nothing here calls the
code under test, so a test cannot pass because the builder and the code share a mistake.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from archi3d import ConsolidateOptions, Summary, consolidate
from archi3d.columns import GENERATIONS_COLUMNS, MANIFEST_COLUMNS

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
"""The moment every test consolidates at (heartbeats are fresh or stale relative to it)."""

RUN = "run-a"
OTHER_RUN = "run-b"
BOM = b"\xef\xbb\xbf"
GLB = b"glTF\x02\x00\x00\x00\x24\x00\x00\x00" + b"\x00" * 24
GLB_HASH = {"gen_object_sha256": hashlib.sha256(GLB).hexdigest(), "gen_object_bytes": str(len(GLB))}
"""The cells consolidate records for an object of GLB's bytes."""
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
LATER_COLUMNS: tuple[str, ...] = ("fscore", "fscore_status")
TABLE_COLUMNS: tuple[str, ...] = (*GENERATIONS_COLUMNS, *LATER_COLUMNS)
"""The header of a table a later phase has already widened."""

MarkerKind = Literal["inprogress", "completed", "failed"]
MarkerStyle = Literal["reference", "json", "empty"]


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# ----------------------------------------------------------------------------------- generations.csv


def gen_row(job_id: str, status: str = "enqueued", run_id: str = RUN, **cells: str) -> dict[str, str]:
    """The cells of one generations.csv row (unnamed columns stay empty)."""
    row = {
        "run_id": run_id,
        "job_id": job_id,
        "status": status,
        "product_id": f"p{job_id}",
        "variant": "oak",
        "algo": "trellis",
    }
    row.update(cells)
    return row


def encode_csv(
    rows: Sequence[Mapping[str, str]],
    columns: Sequence[str] = TABLE_COLUMNS,
    *,
    newline: str = "\n",
    bom: bool = True,
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(columns)
    for row in rows:
        unknown = set(row) - set(columns)
        assert not unknown, f"columns not in the header: {unknown}"
        writer.writerow([row.get(c, "") for c in columns])
    data = out.getvalue().encode("utf-8")
    return BOM + data if bom else data


def csv_path(ws: Path) -> Path:
    return ws / "tables" / "generations.csv"


def lock_path(ws: Path) -> Path:
    return ws / "tables" / "generations.lock"


def write_table(
    ws: Path,
    rows: Sequence[Mapping[str, str]],
    columns: Sequence[str] = TABLE_COLUMNS,
    *,
    newline: str = "\n",
    bom: bool = True,
) -> bytes:
    data = encode_csv(rows, columns, newline=newline, bom=bom)
    write_table_bytes(ws, data)
    return data


def write_table_bytes(ws: Path, data: bytes) -> None:
    path = csv_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def table_bytes(ws: Path) -> bytes:
    return csv_path(ws).read_bytes()


def table_rows(ws: Path) -> list[dict[str, str]]:
    """Every row of generations.csv, parsed with the csv module (no type inference)."""
    text = csv_path(ws).read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def rows_of(ws: Path, job_id: str, run_id: str = RUN) -> list[dict[str, str]]:
    return [r for r in table_rows(ws) if r["run_id"] == run_id and r["job_id"] == job_id]


def one_row(ws: Path, job_id: str, run_id: str = RUN) -> dict[str, str]:
    found = rows_of(ws, job_id, run_id)
    assert len(found) == 1, f"{run_id}/{job_id}: {len(found)} rows"
    return found[0]


# ----------------------------------------------------------------------------------- runs/<run_id>


def run_dir(ws: Path, run_id: str = RUN) -> Path:
    folder = ws / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def manifest_job(job_id: str, **cells: str) -> dict[str, str]:
    job = {"job_id": job_id, "product_id": f"p{job_id}", "variant": "oak", "algo": "trellis"}
    job.update(cells)
    return job


def write_manifest(ws: Path, jobs: Sequence[Mapping[str, str] | str], run_id: str = RUN) -> Path:
    path = run_dir(ws, run_id) / "manifest.csv"
    entries = [manifest_job(j) if isinstance(j, str) else j for j in jobs]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for entry in entries:
        writer.writerow([entry.get(c, "") for c in MANIFEST_COLUMNS])
    path.write_bytes(BOM + out.getvalue().encode("utf-8"))
    return path


def rel_output(job_id: str, name: str = "generated.glb", run_id: str = RUN) -> str:
    return f"runs/{run_id}/outputs/{job_id}/{name}"


def reference_object_name(product_id: str, variant: str, algo: str, job_id: str) -> str:
    """How the reference archi3D worker names a job's object."""
    return f"{product_id}_{variant}_{algo}_{job_id[:8]}.glb"


def set_mtime(path: Path, moment: dt.datetime) -> None:
    stamp = moment.timestamp()
    os.utime(path, (stamp, stamp))


def marker(
    ws: Path,
    job_id: str,
    kind: MarkerKind,
    at: dt.datetime | None = None,
    *,
    run_id: str = RUN,
    style: MarkerStyle = "reference",
    pid: int = 4242,
    naive: bool = False,
) -> Path:
    """A state marker; reference style is `timestamp: <ISO8601>\\npid: <n>\\n` (naive local time if asked)."""
    state = run_dir(ws, run_id) / "state"
    state.mkdir(exist_ok=True)
    path = state / f"{job_id}.{kind}"
    moment = at if at is not None else NOW
    stamp = moment.astimezone(UTC).replace(tzinfo=None).isoformat() if naive else iso(moment)
    if style == "reference":
        path.write_text(f"timestamp: {stamp}\npid: {pid}\n", encoding="utf-8")
    elif style == "json":
        path.write_text(json.dumps({"timestamp": stamp, "pid": pid}), encoding="utf-8")
    else:
        path.write_bytes(b"")
        set_mtime(path, moment)
    return path


def state_file(ws: Path, name: str, data: bytes = b"", run_id: str = RUN) -> Path:
    """Any other file in state/ (e.g. the worker's `<job_id>.lock` or a `*.tmp`)."""
    state = run_dir(ws, run_id) / "state"
    state.mkdir(exist_ok=True)
    path = state / name
    path.write_bytes(data)
    return path


def error_txt(ws: Path, job_id: str, message: str, *, run_id: str = RUN, raw: bytes | None = None) -> Path:
    """The reference error.txt: `Error: <message>\\n\\nTraceback:\\n...`."""
    state = run_dir(ws, run_id) / "state"
    state.mkdir(exist_ok=True)
    path = state / f"{job_id}.error.txt"
    if raw is not None:
        path.write_bytes(raw)
    else:
        text = f'Error: {message}\n\nTraceback:\n  File "worker.py", line 1, in run\nRuntimeError: {message}\n'
        path.write_text(text, encoding="utf-8")
    return path


def error_txt_text(message: str) -> str:
    return f'Error: {message}\n\nTraceback:\n  File "worker.py", line 1, in run\nRuntimeError: {message}\n'


def output(
    ws: Path,
    job_id: str,
    name: str = "generated.glb",
    data: bytes = GLB,
    *,
    run_id: str = RUN,
    mtime: dt.datetime | None = None,
) -> Path:
    folder = run_dir(ws, run_id) / "outputs" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    set_mtime(path, mtime if mtime is not None else ago(3600))
    return path


def metadata(ws: Path, folder_job_id: str, fields: Mapping[str, str], run_id: str = RUN) -> Path:
    """outputs/<folder_job_id>/metadata.json holding `fields` (e.g. a job_id that disagrees)."""
    folder = run_dir(ws, run_id) / "outputs" / folder_job_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metadata.json"
    path.write_text(json.dumps(dict(fields)), encoding="utf-8")
    set_mtime(path, ago(3600))
    return path


def workspace_file(ws: Path, rel: str, data: bytes = GLB) -> Path:
    path = ws / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    set_mtime(path, ago(3600))
    return path


def worker_event(
    ws: Path,
    event: str,
    job_id: str,
    at: dt.datetime,
    *,
    run_id: str = RUN,
    duration_s: float | None = None,
) -> None:
    """One line of logs/worker.log: `<ISO8601> {"event":..,"run_id":..,"job_id":..,"duration_s":..}`."""
    record: dict[str, Any] = {"event": event, "run_id": run_id, "job_id": job_id}
    if duration_s is not None:
        record["duration_s"] = duration_s
    path = ws / "logs" / "worker.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{iso(at)} {json.dumps(record)}\n")


# ----------------------------------------------------------------------------------- observing


def snapshot(ws: Path) -> dict[str, bytes | None]:
    """Every file (its bytes), folder (None) and link (b"-> target") under the workspace, by relative POSIX path."""
    found: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(ws):
        base = Path(folder)
        for name in (*dirs, *files):
            path = base / name
            if path.is_symlink():  # what it points to (it may point nowhere)
                found[path.relative_to(ws).as_posix()] = b"-> " + os.fsencode(os.readlink(path))
            else:
                found[path.relative_to(ws).as_posix()] = None if name in dirs else path.read_bytes()
    return found


def metrics_records(ws: Path) -> list[dict[str, Any]]:
    path = ws / "logs" / "metrics.log"
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stamp, _, body = line.partition(" ")
        dt.datetime.fromisoformat(stamp)
        value = json.loads(body)
        assert isinstance(value, dict)
        records.append(value)
    return records


def run(ws: Path, run_id: str = RUN, **options: Any) -> Summary:
    """consolidate(ws, ConsolidateOptions(run_id, **options)) at NOW."""
    return consolidate(ws, ConsolidateOptions(run_id=run_id, **options), now=NOW)


def check_identity(summary: Summary) -> None:
    """considered = upsert_inserted + upsert_updated + unchanged + duplicate_rows_merged."""
    assert summary.considered == (
        summary.upsert_inserted + summary.upsert_updated + summary.unchanged + summary.duplicate_rows_merged
    ), summary


def counters(summary: Summary) -> dict[str, int]:
    names = (
        "considered",
        "upsert_inserted",
        "upsert_updated",
        "unchanged",
        "duplicate_rows_merged",
        "conflicts_resolved",
        "marker_mismatches_fixed",
        "downgraded_missing_output",
        "missing_outputs",
        "invalid_previews",
        "not_in_manifest",
        "orphans",
    )
    record = summary.to_record()
    return {name: int(record[name]) for name in names}


_LOCK_HOLDER = """
import sys, time
import filelock

lock = filelock.FileLock(sys.argv[1])  # exactly as the reference archi3D worker takes it
lock.acquire()
print("locked", flush=True)
command = sys.stdin.readline().strip()
if command.startswith("hold"):
    time.sleep(float(command.split()[1]))
lock.release()
print("released", flush=True)
sys.stdin.readline()
"""


@contextlib.contextmanager
def lock_held_by_another_process(path: Path, env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A real process holding the lock file `path` until it reads a line ("hold S" first waits S s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else dict(env),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def small_run(ws: Path, manifest: Sequence[str] = ("j1", "j2", "j3")) -> bytes:
    """j1 completed by markers, j2 a completed row without object, j3 failed with error.txt, o1 another run.

    Returns the table's bytes as written.
    """
    write_manifest(ws, list(manifest))
    data = write_table(
        ws,
        [
            gen_row("j1", "enqueued"),
            gen_row("j2", "completed"),
            gen_row("j3", "running"),
            gen_row("o1", "completed", run_id=OTHER_RUN, product_id="00123", notes='a "quoted", note'),
        ],
    )
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1")
    marker(ws, "j3", "failed", ago(100))
    error_txt(ws, "j3", "CUDA out of memory")
    return data
