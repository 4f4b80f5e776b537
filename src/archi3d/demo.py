"""Demo workspace generator: one run holding every situation consolidate must settle, built deterministically."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import attrs

from archi3d.columns import GENERATIONS_COLUMNS, MANIFEST_COLUMNS
from archi3d.paths import validate_id

__all__ = [
    "DEFAULT_NOW",
    "EXPECTATIONS_FILE",
    "LATER_PHASE_COLUMNS",
    "SITUATIONS",
    "TABLE_COLUMNS",
    "DemoWorkspace",
    "Expectation",
    "build_demo_workspace",
    "glb_bytes",
    "png_bytes",
    "situation_counts",
]

UTC = dt.timezone.utc
DEFAULT_NOW = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
LATER_PHASE_COLUMNS: tuple[str, ...] = ("fscore", "fscore_status", "vf_status", "vfscore_overall")
TABLE_COLUMNS: tuple[str, ...] = (*GENERATIONS_COLUMNS, *LATER_PHASE_COLUMNS)
EXPECTATIONS_FILE = "demo-expectations.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@attrs.frozen
class Expectation:
    """What the generator intends `archi3d consolidate --run-id <run>` (default options) to decide for one job.

    Orphans are never inserted: in_table is False and status is empty.
    """

    run_id: str
    job_id: str
    status: str
    in_table: bool
    situation: str
    gen_object_path: str


@attrs.frozen
class DemoWorkspace:
    """A built demo workspace and what consolidating its main run should yield."""

    workspace: Path
    run_id: str
    other_run_id: str
    expectations: tuple[Expectation, ...]


def glb_bytes() -> bytes:
    """A minimal valid binary glTF 2.0 file: one scene, one node, one triangle mesh."""
    positions = struct.pack("<9f", 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    document = {
        "asset": {"version": "2.0", "generator": "archi3d demo"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "mode": 4}]}],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 3,
                "type": "VEC3",
                "min": [0.0, 0.0, 0.0],
                "max": [1.0, 1.0, 0.0],
            }
        ],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(positions), "target": 34962}],
        "buffers": [{"byteLength": len(positions)}],
    }
    json_chunk = _padded(json.dumps(document, separators=(",", ":")).encode("utf-8"), b" ")
    bin_chunk = _padded(positions, b"\x00")
    body = _glb_chunk(b"JSON", json_chunk) + _glb_chunk(b"BIN\x00", bin_chunk)
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def _padded(data: bytes, filler: bytes) -> bytes:
    return data + filler * (-len(data) % 4)


def _glb_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + kind + data


def png_bytes(rgb: tuple[int, int, int], size: int = 4) -> bytes:
    """A valid size x size PNG of one solid colour (8-bit RGB)."""
    scanline = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanline * size, 9))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_GLB = glb_bytes()
_PREVIEW_COLOURS = ((200, 120, 40), (40, 120, 200), (90, 180, 90))
_PNGS = tuple(png_bytes(colour) for colour in _PREVIEW_COLOURS)
_NOT_A_PNG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 a jpeg saved as .png"


_CLEAN = "clean_completed"
# Share of the main run's jobs per situation; clean_completed takes what is left, every one gets at least 1.
_SHARES: Mapping[str, float] = {
    "crashed_worker_completed": 0.10,
    "crashed_worker_failed": 0.04,
    "failed": 0.04,
    "failed_error_from_file": 0.02,
    "pending": 0.04,
    "stale_heartbeat": 0.04,
    "fresh_heartbeat": 0.03,
    "completed_missing_object": 0.01,
    "completed_empty_object": 0.01,
    "duplicate_rows": 0.02,
    "manifest_only_with_evidence": 0.02,
    "manifest_only_no_evidence": 0.02,
    "orphan": 0.01,
    "invalid_previews": 0.01,
    "redo_leftover_error": 0.01,
    "legacy_object_path": 0.01,
    "windows_backslash_path": 0.01,
    "numeric_looking_ids": 0.015,
    "json_marker": 0.01,
    "empty_marker": 0.01,
    "metadata_mismatch": 0.01,
    "failed_marker_beside_completed_row": 0.005,
    "rerun_under_way": 0.005,
    "several_candidate_objects": 0.005,
    "completed_and_failed_markers": 0.005,
    "not_in_manifest": 0.01,
}
# Situations with two variants (e.g. both numeric-looking id shapes) get both even in a small run.
_AT_LEAST_TWO = frozenset({"numeric_looking_ids", "manifest_only_with_evidence", "duplicate_rows", "fresh_heartbeat"})
SITUATIONS: tuple[str, ...] = (_CLEAN, *_SHARES)
_OUTSIDE_MANIFEST = frozenset({"orphan", "not_in_manifest"})
_NUMERIC_LOOKING_IDS = ("197260739297", "12e456789012")


def situation_counts(jobs: int) -> dict[str, int]:
    """How many of the main run's jobs each situation gets."""
    counts = _special_counts(jobs)
    clean = jobs - sum(counts.values())
    if clean < 1:
        least = next(n for n in range(jobs + 1, 10 * len(SITUATIONS)) if n > sum(_special_counts(n).values()))
        raise ValueError(f"jobs={jobs} is too few to hold every situation; use at least {least}")
    return {_CLEAN: clean, **counts}


def _special_counts(jobs: int) -> dict[str, int]:
    return {name: max(_minimum(name), round(share * jobs)) for name, share in _SHARES.items()}


def _minimum(situation: str) -> int:
    return 2 if situation in _AT_LEAST_TWO else 1


_ALGOS = (  # name, version, unit price in USD
    ("trellis", "1.0.2", ""),
    ("hunyuan3d_2", "2.1", ""),
    ("tripo3d_v2", "v2.5", "0.25"),
    ("meshy_v4", "4", "0.20"),
)
_VARIANTS = ("default", "oak", "walnut", "black", "white")
_MANUFACTURERS = ("Muuto", "HAY", "Møbelfabrikken", "Vitra", "Ligne Roset")
_NAMES = ("Oslo", "Bergen", "Nord", "Fjord", "Kubus", "Loop", "Arc", "Tide")
_KINDS = (("Furniture", "Seating", "Chairs"), ("Furniture", "Tables", "Side tables"), ("Lighting", "Lamps", "Floor"))
_ERRORS = ("CUDA out of memory", "mesh extraction produced no faces", "API timeout after 300 s", "invalid input image")


@attrs.frozen
class _Job:
    """One job's catalogue data and timeline (its attempt ran from start for duration_ms)."""

    run_id: str
    job_id: str
    product_id: str
    variant: str
    algo: str
    algo_version: str
    unit_price_usd: str
    product_name: str
    manufacturer: str
    categories: tuple[str, str, str]
    description: str
    source_images: tuple[str, ...]
    used_images: tuple[str, ...]
    image_set_hash: str
    created_at: dt.datetime
    start: dt.datetime
    duration_ms: int
    pid: int
    host: str

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(milliseconds=self.duration_ms)

    @property
    def duration_text(self) -> str:
        return f"{self.duration_ms / 1000:.3f}"

    @property
    def outputs(self) -> str:
        return f"runs/{self.run_id}/outputs/{self.job_id}"

    @property
    def state(self) -> str:
        return f"runs/{self.run_id}/state/{self.job_id}"

    @property
    def generated_object(self) -> str:
        return f"{self.outputs}/generated.glb"

    @property
    def reference_object(self) -> str:
        """Where the reference archi3D worker puts the object."""
        return f"{self.outputs}/{self.product_id}_{self.variant}_{self.algo}_{self.job_id[:8]}.glb"

    def manifest_cells(self) -> dict[str, str]:
        cells = {
            "job_id": self.job_id,
            "product_id": self.product_id,
            "variant": self.variant,
            "algo": self.algo,
            "used_n_images": str(len(self.used_images)),
            "image_set_hash": self.image_set_hash,
            "gt_object_path": f"dataset/{self.product_id}/gt/{self.product_id}.glb",
            "product_name": self.product_name,
            "manufacturer": self.manufacturer,
        }
        for n in range(1, 7):
            cells[f"used_image_{n}_path"] = self.used_images[n - 1] if n <= len(self.used_images) else ""
        return cells


def _new_job(rng: random.Random, run_id: str, job_id: str, base: dt.datetime, product_id: str = "") -> _Job:
    product_id = product_id or f"{rng.randrange(1, 100_000):05d}"
    algo, version, price = rng.choice(_ALGOS)
    n_source = rng.randint(1, 6)
    sources = tuple(f"dataset/{product_id}/images/{product_id}_{k}.jpg" for k in range(1, n_source + 1))
    name = _product_name(rng)
    start = base - dt.timedelta(seconds=rng.randrange(3_600, 10 * 86_400))
    return _Job(
        run_id=run_id,
        job_id=job_id,
        product_id=product_id,
        variant=rng.choice(_VARIANTS),
        algo=algo,
        algo_version=version,
        unit_price_usd=price,
        product_name=name,
        manufacturer=rng.choice(_MANUFACTURERS),
        categories=rng.choice(_KINDS),
        description=_description(rng, name),
        source_images=sources,
        used_images=sources[: rng.randint(1, n_source)],
        image_set_hash=f"{rng.getrandbits(64):016x}",
        created_at=start - dt.timedelta(seconds=rng.randrange(60, 7_200)),
        start=start,
        duration_ms=rng.randrange(20_000, 900_000),
        pid=rng.randrange(1_000, 65_000),
        host=f"gpu-node-{rng.randrange(1, 9):02d}",
    )


def _product_name(rng: random.Random) -> str:
    name = f"{rng.choice(_NAMES)} {rng.choice(('chair', 'lamp', 'table', 'stool'))}"
    # Some names need CSV quoting, as real catalogues do.
    return f'{name} "{rng.choice(_NAMES)}", {rng.choice(_VARIANTS)}' if rng.random() < 0.1 else name


def _description(rng: random.Random, name: str) -> str:
    roll = rng.random()
    if roll < 0.02:
        return f"{name}.\nTwo-part frame; assembly required."
    if roll < 0.2:
        return f"{name}, solid wood, oiled finish"
    return ""


class _IdSource:
    """Unique job ids: 12 hex digits like the reference worker's, or the numeric-looking ones asked for."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def hex_id(self) -> str:
        return self._claim(lambda: f"{self._rng.getrandbits(48):012x}")

    def numeric_looking_id(self, nth: int) -> str:
        if nth < len(_NUMERIC_LOOKING_IDS) and _NUMERIC_LOOKING_IDS[nth] not in self._used:
            return self._claim(lambda: _NUMERIC_LOOKING_IDS[nth])
        if nth % 2 == 0:
            return self._claim(lambda: str(self._rng.randrange(10**11, 10**12)))
        return self._claim(lambda: f"{self._rng.randrange(10, 100)}e{self._rng.randrange(10**8, 10**9)}")

    def _claim(self, draw: Callable[[], str]) -> str:
        candidate = draw()
        while candidate in self._used:
            candidate = draw()
        self._used.add(candidate)
        return candidate


_Record = list[str]


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _catalogue_cells(job: _Job, status: str) -> dict[str, str]:
    """The cells the enqueue phase writes: catalogue fields and the job's identity."""
    cells = dict.fromkeys(TABLE_COLUMNS, "")
    cells.update(job.manifest_cells())
    cells.update(
        category_l1=job.categories[0],
        category_l2=job.categories[1],
        category_l3=job.categories[2],
        description=job.description,
        source_n_images=str(len(job.source_images)),
        run_id=job.run_id,
        algo_version=job.algo_version,
        status=status,
        created_at=_iso(job.created_at),
        unit_price_usd=job.unit_price_usd,
        price_source="vendor price list" if job.unit_price_usd else "",
    )
    for n, path in enumerate(job.source_images, start=1):
        cells[f"source_image_{n}_path"] = path
    return cells


def _worker_cells(job: _Job) -> dict[str, str]:
    return {
        "worker_host": job.host,
        "worker_user": "bench",
        "worker_gpu": "NVIDIA A100 80GB",
        "worker_env": "py3.11-cu121",
        "worker_commit": "3f9c2ab",
    }


def _enqueued_row(job: _Job) -> dict[str, str]:
    return _catalogue_cells(job, "enqueued")


def _running_row(job: _Job) -> dict[str, str]:
    cells = _catalogue_cells(job, "running")
    cells.update(_worker_cells(job), generation_start=_iso(job.start))
    return cells


def _finished_row(job: _Job, status: str) -> dict[str, str]:
    cells = _catalogue_cells(job, status)
    cells.update(
        _worker_cells(job),
        generation_start=_iso(job.start),
        generation_end=_iso(job.end),
        generation_duration_s=job.duration_text,
    )
    return cells


def _completed_row(job: _Job, object_path: str, previews: Sequence[str]) -> dict[str, str]:
    cells = _finished_row(job, "completed")
    cells["gen_object_path"] = object_path
    for n, path in enumerate(previews, start=1):
        cells[f"preview_{n}_path"] = path
    return cells


def _failed_row(job: _Job, error_msg: str) -> dict[str, str]:
    cells = _finished_row(job, "failed")
    cells["error_msg"] = error_msg
    return cells


def _table_record(cells: Mapping[str, str]) -> _Record:
    # Rows are kept as lists, not dicts: a third of the memory at 300k rows.
    return [cells[name] for name in TABLE_COLUMNS]


def _error_text(message: str, frames: int = 1) -> str:
    frame = '  File "archi3d/worker.py", line 212, in run_job\n    mesh = algo.generate(images)\n'
    return f"Error: {message}\n\nTraceback:\n{frame * frames}RuntimeError: {message}\n"


_MarkerStyle = Literal["reference", "json", "empty"]


@attrs.define
class _Builder:
    """Writes one workspace's files and collects its table rows, manifest rows and log lines."""

    workspace: Path
    rng: random.Random
    base: dt.datetime
    ids: _IdSource
    rows: list[_Record] = attrs.field(factory=list)
    late_rows: list[_Record] = attrs.field(factory=list)
    manifests: dict[str, list[_Record]] = attrs.field(factory=dict)
    log_lines: list[tuple[dt.datetime, str]] = attrs.field(factory=list)
    fresh_markers: list[tuple[str, int]] = attrs.field(factory=list)
    expectations: list[Expectation] = attrs.field(factory=list)
    situation: str = ""
    _folders: set[str] = attrs.field(factory=set)

    def new_job(self, run_id: str, job_id: str = "", product_id: str = "") -> _Job:
        return _new_job(self.rng, run_id, job_id or self.ids.hex_id(), self.base, product_id)

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

    def marker(self, job: _Job, kind: str, when: dt.datetime, style: _MarkerStyle = "reference") -> None:
        texts = {
            "reference": f"timestamp: {_iso(when)}\npid: {job.pid}\n",
            "json": json.dumps({"timestamp": _iso(when), "pid": job.pid}),
            "empty": "",
        }
        self.write(f"{job.state}.{kind}", texts[style].encode("utf-8"), when)

    def fresh_heartbeat(self, job: _Job) -> None:
        """An .inprogress marker that must read as fresh when consolidate runs: written last, at the real time."""
        self.fresh_markers.append((f"{job.state}.inprogress", job.pid))

    def leftover_lock(self, job: _Job) -> None:
        self.write(f"{job.state}.lock", b"", job.end)

    def error_file(self, job: _Job, message: str, when: dt.datetime, frames: int = 1, tail: bytes = b"") -> None:
        self.write(f"{job.state}.error.txt", _error_text(message, frames).encode("utf-8") + tail, when)

    def object_file(self, relative: str, when: dt.datetime, data: bytes = _GLB) -> str:
        self.write(relative, data, when)
        return relative

    def previews(self, job: _Job, count: int) -> list[str]:
        paths = [f"{job.outputs}/preview_{n}.png" for n in range(1, count + 1)]
        for n, path in enumerate(paths):
            self.write(path, _PNGS[n], job.end)
        return paths

    def metadata(self, job: _Job, job_id: str = "") -> None:
        document = {
            "run_id": job.run_id,
            "job_id": job_id or job.job_id,
            "algo": job.algo,
            "product_id": job.product_id,
        }
        self.write(f"{job.outputs}/metadata.json", json.dumps(document, indent=2).encode("utf-8"), job.end)

    def log_event(self, job: _Job, event: str) -> None:
        record = {"event": event, "run_id": job.run_id, "job_id": job.job_id, "duration_s": job.duration_ms / 1000}
        self.log_lines.append((job.end, f"{_iso(job.end)} {json.dumps(record, separators=(',', ':'))}"))

    def add_row(self, cells: Mapping[str, str]) -> None:
        self.rows.append(_table_record(cells))

    def add_late_row(self, cells: Mapping[str, str]) -> None:
        """A row the table holds further down, after the run's other rows."""
        self.late_rows.append(_table_record(cells))

    def add_manifest(self, job: _Job) -> None:
        cells = job.manifest_cells()
        self.manifests.setdefault(job.run_id, []).append([cells[name] for name in MANIFEST_COLUMNS])

    def expect(self, job: _Job, status: str, object_path: str = "", in_table: bool = True) -> None:
        self.expectations.append(Expectation(job.run_id, job.job_id, status, in_table, self.situation, object_path))


def _clean_completed(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    previews = b.previews(job, 1 + nth % 3)
    b.marker(job, "completed", job.end)
    if nth % 2 == 0:
        b.metadata(job)
    b.log_event(job, "job_completed")
    b.add_row(_completed_row(job, obj, previews))
    b.expect(job, "completed", obj)


def _crashed_worker_completed(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.reference_object, job.end)
    b.previews(job, 1 + nth % 3)
    b.marker(job, "completed", job.end)
    b.leftover_lock(job)
    if nth == 0:
        b.write(f"{job.state}.completed.tmp", b"", job.end)
    b.log_event(job, "job_completed")
    b.add_row(_enqueued_row(job))
    b.expect(job, "completed", obj)


def _crashed_worker_failed(b: _Builder, job: _Job, nth: int) -> None:
    b.marker(job, "failed", job.end)
    b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.end)
    b.leftover_lock(job)
    b.log_event(job, "job_failed")
    b.add_row(_enqueued_row(job))
    b.expect(job, "failed")


def _failed(b: _Builder, job: _Job, nth: int) -> None:
    message = _ERRORS[nth % len(_ERRORS)]
    b.marker(job, "failed", job.end)
    b.error_file(job, message, job.end)
    b.log_event(job, "job_failed")
    b.add_row(_failed_row(job, message))
    b.expect(job, "failed")


def _failed_error_from_file(b: _Builder, job: _Job, nth: int) -> None:
    """A failed row without error_msg takes it from error.txt; the first one is long and not clean UTF-8."""
    b.marker(job, "failed", job.end)
    if nth == 0:
        b.error_file(job, "worker ran out of patience", job.end, frames=40, tail=b"\xff\xfe trailing bytes\n")
    else:
        b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.end)
    b.add_row(_failed_row(job, ""))
    b.expect(job, "failed")


def _pending(b: _Builder, job: _Job, nth: int) -> None:
    b.add_row(_enqueued_row(job))
    b.expect(job, "enqueued")


def _stale_heartbeat(b: _Builder, job: _Job, nth: int) -> None:
    beat = b.base - dt.timedelta(hours=2 + nth % 24)
    b.marker(job, "inprogress", beat, "json" if nth % 4 == 3 else "reference")
    b.leftover_lock(job)
    b.add_row(_running_row(job))
    b.expect(job, "enqueued")


def _fresh_heartbeat(b: _Builder, job: _Job, nth: int) -> None:
    b.fresh_heartbeat(job)
    b.add_row(_running_row(job) if nth % 2 == 0 else _enqueued_row(job))
    b.expect(job, "running")


def _completed_missing_object(b: _Builder, job: _Job, nth: int) -> None:
    # The object and its previews were deleted (or never synced); half still have their .completed marker.
    if nth % 2 == 0:
        b.marker(job, "completed", job.end)
    previews = [f"{job.outputs}/preview_1.png"]
    b.add_row(_completed_row(job, job.generated_object, previews))
    b.expect(job, "failed", job.generated_object)


def _completed_empty_object(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end, data=b"")
    previews = b.previews(job, 1)
    b.marker(job, "completed", job.end)
    b.add_row(_completed_row(job, obj, previews))
    b.expect(job, "failed", obj)


def _duplicate_rows(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    previews = b.previews(job, 2)
    b.marker(job, "completed", job.end)
    complete = _completed_row(job, obj, previews)
    stale = _running_row(job) if nth % 2 == 0 else _enqueued_row(job)
    first, second = (complete, stale) if nth % 2 == 0 else (stale, complete)
    b.add_row(first)
    b.add_late_row(second)
    b.expect(job, "completed", obj)


def _manifest_only_with_evidence(b: _Builder, job: _Job, nth: int) -> None:
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


def _manifest_only_no_evidence(b: _Builder, job: _Job, nth: int) -> None:
    b.expect(job, "enqueued")


def _orphan(b: _Builder, job: _Job, nth: int) -> None:
    if nth % 2 == 0:
        b.object_file(job.generated_object, job.end)
        b.marker(job, "completed", job.end)
    else:
        b.marker(job, "failed", job.end)
        b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.end)
    b.expect(job, "", in_table=False)


def _invalid_previews(b: _Builder, job: _Job, nth: int) -> None:
    """Only preview_1 is a PNG; preview_2 is empty and preview_3 lacks the signature: neither may be recorded."""
    obj = b.object_file(job.generated_object, job.end)
    b.write(f"{job.outputs}/preview_1.png", _PNGS[0], job.end)
    b.write(f"{job.outputs}/preview_2.png", b"", job.end)
    b.write(f"{job.outputs}/preview_3.png", _NOT_A_PNG, job.end)
    b.marker(job, "completed", job.end)
    b.add_row(_completed_row(job, obj, []))
    b.expect(job, "completed", obj)


def _redo_leftover_error(b: _Builder, job: _Job, nth: int) -> None:
    """`--redo` removed .failed but left the old error.txt; the completed row must not take its message."""
    earlier = job.start - dt.timedelta(days=1)
    b.error_file(job, _ERRORS[nth % len(_ERRORS)], earlier)
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "completed", job.end)
    if nth % 2 == 0:
        b.add_row(_completed_row(job, obj, []))
    else:
        b.log_event(job, "job_completed")
        b.add_row(_enqueued_row(job))
    b.expect(job, "completed", obj)


def _legacy_object_path(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(f"runs/{job.run_id}/outputs/{job.algo}/{job.job_id}.glb", job.end)
    b.marker(job, "completed", job.end)
    b.add_row(_completed_row(job, obj, []))
    b.expect(job, "completed", obj)


def _windows_backslash_path(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    previews = b.previews(job, 1)
    b.marker(job, "completed", job.end)
    row = _completed_row(job, obj.replace("/", "\\"), [p.replace("/", "\\") for p in previews])
    b.add_row(row)
    b.expect(job, "completed", obj)


def _numeric_looking_ids(b: _Builder, job: _Job, nth: int) -> None:
    if nth % 2 == 0:
        _clean_completed(b, job, nth)
    else:
        _crashed_worker_completed(b, job, nth)


def _json_marker(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "completed", job.end, "json")
    b.add_row(_enqueued_row(job))
    b.expect(job, "completed", obj)


def _empty_marker(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "completed", job.end, "empty")
    b.add_row(_enqueued_row(job))
    b.expect(job, "completed", obj)


def _metadata_mismatch(b: _Builder, job: _Job, nth: int) -> None:
    """The folder holds another job's files (a copy): nothing in it is evidence for this job."""
    obj = b.object_file(job.generated_object, job.end)
    b.metadata(job, job_id=b.ids.hex_id())
    b.marker(job, "completed", job.end)
    b.add_row(_completed_row(job, obj, []))
    b.expect(job, "failed", obj)


def _failed_marker_beside_completed_row(b: _Builder, job: _Job, nth: int) -> None:
    """A re-run that failed after the row was completed: the latest attempt wins."""
    obj = b.object_file(job.generated_object, job.start)
    b.marker(job, "failed", job.end)
    b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.end)
    b.add_row(_completed_row(job, obj, []))
    b.expect(job, "failed", obj)


def _rerun_under_way(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    previews = b.previews(job, 1)
    b.marker(job, "completed", job.end)
    b.fresh_heartbeat(job)
    b.add_row(_completed_row(job, obj, previews))
    b.expect(job, "completed", obj)


def _several_candidate_objects(b: _Builder, job: _Job, nth: int) -> None:
    # The older candidate sorts last by name, so only picking by time finds the right one.
    b.object_file(f"{job.outputs}/attempt_1.glb", job.start - dt.timedelta(hours=1))
    obj = b.object_file(job.reference_object, job.end)
    b.marker(job, "completed", job.end)
    b.add_row(_enqueued_row(job))
    b.expect(job, "completed", obj)


def _completed_and_failed_markers(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "failed", job.start - dt.timedelta(hours=1))
    b.error_file(job, _ERRORS[nth % len(_ERRORS)], job.start - dt.timedelta(hours=1))
    b.marker(job, "completed", job.end)
    b.add_row(_enqueued_row(job))
    b.expect(job, "completed", obj)


def _not_in_manifest(b: _Builder, job: _Job, nth: int) -> None:
    obj = b.object_file(job.generated_object, job.end)
    b.marker(job, "completed", job.end)
    b.log_event(job, "job_completed")
    b.add_row(_enqueued_row(job))
    b.expect(job, "completed", obj)


_SituationWriter = Callable[[_Builder, _Job, int], None]
_WRITERS: Mapping[str, _SituationWriter] = {
    _CLEAN: _clean_completed,
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
}
assert set(_WRITERS) == set(SITUATIONS)


def _build_main_run(b: _Builder, run_id: str, jobs: int) -> list[_Record]:
    slots = [name for name, count in situation_counts(jobs).items() for _ in range(count)]
    b.rng.shuffle(slots)
    seen: dict[str, int] = {}
    for situation in slots:
        nth = seen.get(situation, 0)
        seen[situation] = nth + 1
        job = _main_run_job(b, run_id, situation, nth)
        b.situation = situation
        _WRITERS[situation](b, job, nth)
        if situation not in _OUTSIDE_MANIFEST:
            b.add_manifest(job)
    main_rows = b.rows + b.late_rows
    b.rows, b.late_rows = [], []
    return main_rows


def _main_run_job(b: _Builder, run_id: str, situation: str, nth: int) -> _Job:
    if situation != "numeric_looking_ids":
        return b.new_job(run_id)
    return b.new_job(run_id, b.ids.numeric_looking_id(nth), product_id="00123" if nth == 0 else "")


def _build_other_run(b: _Builder, run_id: str, jobs: int, lean: bool) -> list[_Record]:
    """A run consolidate must not touch: every job completed, its files present, later phases already scored."""
    rows: list[_Record] = []
    for nth in range(jobs):
        job = b.new_job(run_id)
        obj = b.object_file(job.generated_object, job.end)
        previews: list[str] = []
        if not lean:
            previews = b.previews(job, 1 + nth % 3)
            b.marker(job, "completed", job.end)
        row = _completed_row(job, obj, previews)
        row.update(
            fscore=f"{b.rng.uniform(0.3, 0.95):.4f}",
            fscore_status="ok",
            vf_status="ok",
            vfscore_overall=f"{b.rng.uniform(3.0, 9.0):.2f}",
        )
        rows.append(_table_record(row))
        b.add_manifest(job)
    return rows


def _interleave(blocks: Sequence[list[_Record]], chunk: int) -> list[_Record]:
    """Runs' rows in alternating chunks, as runs sharing one table over time would leave them."""
    merged: list[_Record] = []
    for start in range(0, max(len(block) for block in blocks), chunk):
        for block in blocks:
            merged.extend(block[start : start + chunk])
    return merged


def _write_csv(path: Path, columns: Sequence[str], records: Sequence[_Record], encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(records)


def _write_worker_log(path: Path, lines: list[tuple[dt.datetime, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(lines, key=lambda line: line[0])
    path.write_text("".join(f"{text}\n" for _, text in ordered), encoding="utf-8")


def _write_fresh_markers(workspace: Path, markers: Sequence[tuple[str, int]]) -> None:
    for relative, pid in markers:
        path = workspace / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"timestamp: {_iso(dt.datetime.now(UTC))}\npid: {pid}\n", encoding="utf-8")


def _write_expectations(path: Path, expectations: Sequence[Expectation]) -> None:
    records = [attrs.asdict(expectation) for expectation in expectations]
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _check_empty(workspace: Path) -> None:
    if workspace.exists() and any(workspace.iterdir()):
        raise FileExistsError(f"{workspace}: folder is not empty; the demo workspace needs a new or empty folder")


def build_demo_workspace(
    workspace: Path,
    jobs: int = 200,
    seed: int = 0,
    *,
    other_runs: int = 1,
    run_id: str = "demo-run",
    now: dt.datetime | None = None,
    lean: bool = False,
) -> DemoWorkspace:
    """Build a workspace whose run `run_id` holds `jobs` jobs covering every situation, plus `other_runs` runs.

    Everything depends only on the arguments, except the fresh heartbeats, which carry the real current time.
    `now` (default DEFAULT_NOW) is the base of every other timestamp and must lie in the past, or stale
    heartbeats would not be stale. `lean` leaves previews and markers out of the other runs.
    """
    validate_id(run_id, "run_id")
    other_run_ids = [validate_id(f"{run_id}-{n}", "run_id") for n in range(2, other_runs + 2)]
    _check_empty(workspace)
    rng = random.Random(seed)
    b = _Builder(workspace, rng, now or DEFAULT_NOW, _IdSource(rng))
    blocks = [_build_main_run(b, run_id, jobs)]
    blocks += [_build_other_run(b, other, jobs, lean) for other in other_run_ids]
    _write_csv(
        workspace / "tables" / "generations.csv", TABLE_COLUMNS, _interleave(blocks, max(1, jobs // 8)), "utf-8-sig"
    )
    for run, manifest_rows in b.manifests.items():
        _write_csv(workspace / "runs" / run / "manifest.csv", MANIFEST_COLUMNS, manifest_rows, "utf-8")
    _write_worker_log(workspace / "logs" / "worker.log", b.log_lines)
    _write_expectations(workspace / EXPECTATIONS_FILE, b.expectations)
    _write_fresh_markers(workspace, b.fresh_markers)
    return DemoWorkspace(workspace, run_id, other_run_ids[0] if other_run_ids else "", tuple(b.expectations))
