"""Evidence scanning: what a run's folders and the worker log say about each job (disk reads only)."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import attrs

from archi3d.model import Evidence, LogEvent, Status, parse_timestamp
from archi3d.paths import ID_PATTERN, PathResolver, is_safe_relative, to_posix

__all__ = ["ERROR_LIMIT", "RunDisk", "read_worker_events", "scan_job", "scan_run"]

UTC = dt.timezone.utc
ERROR_LIMIT = 2000
TRUNCATED = " (truncated; see error.txt)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MARKERS = (("error.txt", ".error.txt"), ("inprogress", ".inprogress"), ("completed", ".completed"), ("failed", ".failed"))
_EVENTS = {"job_completed": Status.COMPLETED, "job_failed": Status.FAILED}

Progress = Callable[[int, int], None]


@attrs.frozen
class RunDisk:
    """One listing of a run's state/ and outputs/ folders."""

    markers: Mapping[str, Mapping[str, str]]  # job_id -> kind -> file name in state/
    output_folders: frozenset[str]

    @classmethod
    def from_run(cls, resolver: PathResolver, run_id: str) -> RunDisk:
        markers: dict[str, dict[str, str]] = {}
        for name in _list_names(resolver.state_dir(run_id)):
            for kind, suffix in _MARKERS:
                if name.endswith(suffix):
                    job_id = name[: -len(suffix)]
                    if ID_PATTERN.fullmatch(job_id):
                        markers.setdefault(job_id, {})[kind] = name
                    break
        folders = frozenset(n for n in _list_names(resolver.outputs_dir(run_id), folders_only=True) if ID_PATTERN.fullmatch(n))
        return cls(markers, folders)

    def job_ids(self) -> set[str]:
        return {job for job, kinds in self.markers.items() if kinds.keys() - {"error.txt"}} | set(self.output_folders)


def _list_names(folder: Path, folders_only: bool = False) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries if not folders_only or e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _mtime(st: os.stat_result) -> dt.datetime:
    return dt.datetime.fromtimestamp(st.st_mtime, UTC)


def _read_head(path: Path, limit: int) -> tuple[bytes, int] | None:
    """The first `limit` bytes and the size of a regular file; None if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            return handle.read(limit), st.st_size
    except OSError:
        return None


def marker_time(path: Path) -> dt.datetime | None:
    """The timestamp written inside a marker (reference text or JSON); its mtime when it has none."""
    head = _read_head(path, 4096)
    if head is None:
        return None
    text = head[0].decode("utf-8", errors="replace").strip()
    stamp = ""
    if text.startswith("{"):
        try:
            value = json.loads(text)
            stamp = str(value.get("timestamp", "")) if isinstance(value, dict) else ""
        except ValueError:
            stamp = ""
    else:
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key.strip().lower() == "timestamp":
                stamp = rest.strip()
                break
    try:
        moment = parse_timestamp(stamp)
    except ValueError:
        moment = None
    if moment is not None:
        return moment
    try:
        return _mtime(path.stat())
    except OSError:
        return None


def read_error_text(path: Path) -> str | None:
    """The first ERROR_LIMIT characters of error.txt (bounded read), marked when longer."""
    head = _read_head(path, ERROR_LIMIT * 4 + 4)
    if head is None:
        return None
    data, size = head
    text = data.decode("utf-8", errors="replace")
    if len(text) > ERROR_LIMIT or size > len(data):
        return text[:ERROR_LIMIT] + TRUNCATED
    return text


def read_worker_events(path: Path, run_id: str) -> dict[str, LogEvent]:
    """The last job_completed/job_failed event of each job of `run_id` in worker.log (streamed)."""
    events: dict[str, LogEvent] = {}
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except OSError:
        return events
    with handle:
        for line in handle:
            if run_id not in line or "job_" not in line:
                continue
            stamp, _, body = line.strip().partition(" ")
            try:
                record = json.loads(body)
                end = parse_timestamp(stamp)
            except ValueError:
                continue
            if not isinstance(record, dict) or end is None or record.get("run_id") != run_id:
                continue
            status = _EVENTS.get(str(record.get("event")))
            job_id = record.get("job_id")
            if status is None or not isinstance(job_id, str):
                continue
            duration = record.get("duration_s")
            seconds = float(duration) if isinstance(duration, (int, float)) and duration >= 0 else None
            previous = events.get(job_id)
            if previous is None or previous.end <= end:
                events[job_id] = LogEvent(status, end, seconds)
    return events


@attrs.frozen
class _File:
    rel: str
    size: int
    mtime: dt.datetime
    regular: bool


def _inside(resolver: PathResolver, path: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(resolver.workspace))
    except ValueError:
        return False
    return True


def _stat_file(resolver: PathResolver, rel: str) -> _File | None:
    if not is_safe_relative(rel):
        return None
    path = resolver.workspace / to_posix(rel)
    try:
        st = path.stat()
    except OSError:
        return None
    if path.is_symlink() and not _inside(resolver, path):
        return None
    return _File(to_posix(rel), st.st_size, _mtime(st), stat.S_ISREG(st.st_mode))


def _list_job_folder(resolver: PathResolver, folder: Path, rel_folder: str) -> dict[str, _File]:
    files: dict[str, _File] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    st = entry.stat()
                except OSError:
                    continue
                if entry.is_symlink() and not _inside(resolver, Path(entry.path)):
                    continue
                files[entry.name] = _File(f"{rel_folder}/{entry.name}", st.st_size, _mtime(st), stat.S_ISREG(st.st_mode))
    except OSError:
        pass
    return files


def _metadata_mismatch(path: Path, run_id: str, job_id: str, rel_folder: str) -> str | None:
    head = _read_head(path, 1 << 20)
    if head is None:
        return None
    try:
        meta = json.loads(head[0].decode("utf-8", errors="replace"))
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    named = {k: meta.get(k) for k in ("run_id", "job_id")}
    wrong = {k: v for k, v in named.items() if v is not None and str(v) != {"run_id": run_id, "job_id": job_id}[k]}
    if not wrong:
        return None
    said = ", ".join(f"{k} {v!r}" for k, v in wrong.items())
    return f"{rel_folder}/metadata.json names {said}"


def _is_png(resolver: PathResolver, entry: _File) -> bool:
    if not entry.regular or entry.size < len(PNG_SIGNATURE):
        return False
    head = _read_head(resolver.workspace / entry.rel, len(PNG_SIGNATURE))
    return head is not None and head[0] == PNG_SIGNATURE


def scan_job(
    resolver: PathResolver,
    run_id: str,
    job_id: str,
    disk: RunDisk,
    recorded_paths: Iterable[str] = (),
    recorded_previews: tuple[str, str, str] = ("", "", ""),
    recorded_object: str = "",
    log_event: LogEvent | None = None,
) -> Evidence:
    """Everything the disk says about one job; `recorded_*` are the paths its CSV row(s) name."""
    state = resolver.state_dir(run_id)
    kinds = disk.markers.get(job_id, {})
    times = {kind: marker_time(state / name) for kind, name in kinds.items() if kind != "error.txt"}
    error_text = read_error_text(state / kinds["error.txt"]) if "error.txt" in kinds else None

    rel_folder = f"runs/{run_id}/outputs/{job_id}"
    files = (
        _list_job_folder(resolver, resolver.job_outputs_dir(run_id, job_id), rel_folder)
        if job_id in disk.output_folders
        else {}
    )
    mismatch = (
        _metadata_mismatch(resolver.workspace / files["metadata.json"].rel, run_id, job_id, rel_folder)
        if "metadata.json" in files
        else None
    )
    if mismatch is not None:
        files = {}

    def lookup(rel: str) -> _File | None:
        posix = to_posix(rel)
        if posix.startswith(rel_folder + "/") and "/" not in posix[len(rel_folder) + 1 :]:
            return None if mismatch is not None else files.get(posix[len(rel_folder) + 1 :])
        return _stat_file(resolver, posix)

    existing = frozenset(
        to_posix(p) for p in (*recorded_paths, *recorded_previews) if p and (f := lookup(p)) is not None and f.regular
    )

    chosen: _File | None = None
    candidates: tuple[str, ...] = ()
    recorded = lookup(recorded_object) if recorded_object else None
    if recorded is not None and recorded.regular and recorded.size > 0:
        chosen = recorded
    elif (generated := files.get("generated.glb")) is not None and generated.regular and generated.size > 0:
        chosen = generated
    else:
        glbs = sorted(
            (f for n, f in files.items() if n.lower().endswith(".glb") and f.regular and f.size > 0),
            key=lambda f: (f.mtime, f.rel),
        )
        if glbs:
            chosen = glbs[-1]
            candidates = tuple(f.rel for f in glbs) if len(glbs) > 1 else ()

    previews = ["", "", ""]
    invalid: list[str] = []
    for slot in range(3):
        if recorded_previews[slot] and to_posix(recorded_previews[slot]) in existing:
            continue
        entry = files.get(f"preview_{slot + 1}.png")
        if entry is None:
            continue
        if _is_png(resolver, entry):
            previews[slot] = entry.rel
        else:
            invalid.append(entry.rel)

    regular = [f for f in files.values() if f.regular]
    return Evidence(
        inprogress_at=times.get("inprogress"),
        completed_at=times.get("completed"),
        failed_at=times.get("failed"),
        has_inprogress="inprogress" in kinds,
        has_completed="completed" in kinds,
        has_failed="failed" in kinds,
        object_path=chosen.rel if chosen else None,
        object_size=chosen.size if chosen else 0,
        object_mtime=chosen.mtime if chosen else None,
        object_candidates=candidates,
        previews=(previews[0], previews[1], previews[2]),
        invalid_previews=tuple(invalid),
        earliest_output_at=min((f.mtime for f in regular), default=None),
        existing_paths=existing,
        error_text=error_text,
        metadata_mismatch=mismatch,
        log_event=log_event,
    )


@attrs.frozen
class JobPaths:
    """The paths a job's CSV row(s) name, which the scan checks on disk."""

    all_paths: tuple[str, ...] = ()
    previews: tuple[str, str, str] = ("", "", "")
    gen_object: str = ""


def scan_run(
    resolver: PathResolver,
    run_id: str,
    jobs: Mapping[str, JobPaths],
    progress: Progress | None = None,
) -> tuple[dict[str, Evidence], RunDisk]:
    """Evidence for every job of `jobs`, with one listing of state/ and one per job outputs folder."""
    disk = RunDisk.from_run(resolver, run_id)
    events = read_worker_events(resolver.worker_log_path(), run_id)
    evidence: dict[str, Evidence] = {}
    total = len(jobs)
    for done, (job_id, paths) in enumerate(jobs.items(), 1):
        evidence[job_id] = scan_job(
            resolver, run_id, job_id, disk, paths.all_paths, paths.previews, paths.gen_object, events.get(job_id)
        )
        if progress is not None and (done % 1000 == 0 or done == total):
            progress(done, total)
    return evidence, disk
