"""Evidence scanning: what a run's folders and the worker log say about each job (disk reads only)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs

from archi3d.errors import InputError
from archi3d.model import Evidence, LogEvent, Status, parse_timestamp
from archi3d.paths import ID_PATTERN, PathResolver, is_safe_relative, resolves_within, to_posix, validate_id

__all__ = [
    "ERROR_LIMIT",
    "Entry",
    "Folder",
    "Recorded",
    "RunScanner",
    "WorkerLog",
    "choose_object",
    "marker_time",
    "name_in_folder",
    "read_error_text",
]

UTC = dt.timezone.utc
ERROR_LIMIT = 2000
TRUNCATED = " (truncated; see error.txt)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MARKER_KINDS = frozenset({"inprogress", "completed", "failed"})
_EVENTS = {"job_completed": Status.COMPLETED, "job_failed": Status.FAILED}

Progress = Callable[[int, int], None]


_GARBAGE = (ValueError, RecursionError)  # what json.loads raises on text that is not usable JSON
MAX_DURATION = 10 * 365 * 86400.0
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = dt.datetime(3000, 1, 1, tzinfo=UTC)


def _plausible(moment: dt.datetime) -> bool:
    """Within the years the table accepts (1900-2999): anything else in evidence counts as no time."""
    return _EARLIEST <= moment < _LATEST


def _utc(timestamp: float) -> dt.datetime | None:
    """A file time, or None when it is not a plausible one."""
    try:
        moment = dt.datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if _plausible(moment) else None


def _read_head(path: str | Path, limit: int) -> tuple[bytes, int] | None:
    """The first `limit` bytes and the size of a regular file; None if it cannot be read."""
    # O_NONBLOCK: opening a FIFO (or a device) left where a file should be must not hang the scan.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks: list[bytes] = []
        remaining = min(limit, st.st_size) if st.st_size else limit  # 0: size unknown (e.g. /proc)
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks), st.st_size
    except OSError:
        return None
    finally:
        os.close(fd)


def marker_time(path: str | Path) -> dt.datetime | None:
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
        except _GARBAGE:
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
    if moment is not None and _plausible(moment):
        return moment
    try:
        return _utc(os.stat(path).st_mtime)
    except OSError:
        return None


def read_error_text(path: str | Path) -> str | None:
    """The first ERROR_LIMIT characters of error.txt (bounded read), marked when longer."""
    head = _read_head(path, ERROR_LIMIT * 4 + 4)
    if head is None:
        return None
    data, size = head
    text = data.decode("utf-8", errors="replace")
    if len(text) > ERROR_LIMIT or size > len(data):
        return text[:ERROR_LIMIT] + TRUNCATED
    return text


def _parse_event(line: str, run_id: str) -> tuple[str, LogEvent] | None:
    """The job and event of one worker.log line, if it is a job_completed/job_failed event of `run_id`."""
    stamp, _, body = line.strip().partition(" ")
    try:
        record = json.loads(body)
        end = parse_timestamp(stamp)
    except _GARBAGE:
        return None
    if not isinstance(record, dict) or end is None or not _plausible(end) or record.get("run_id") != run_id:
        return None
    status = _EVENTS.get(str(record.get("event")))
    job_id = record.get("job_id")
    if status is None or not isinstance(job_id, str):
        return None
    duration = record.get("duration_s")
    seconds = float(duration) if isinstance(duration, (int, float)) and 0 <= duration <= MAX_DURATION else None
    if seconds is not None and not _plausible(end - dt.timedelta(seconds=seconds)):
        seconds = None
    return job_id, LogEvent(status, end, seconds)


_JOB_ID_FIELD = re.compile(r'"job_id"\s*:\s*"([^"]*)"')


class WorkerLog:
    """The job events of one run in worker.log: lines are filed by job, and parsed when that job is asked for."""

    def __init__(self, run_id: str, lines: Mapping[str, list[str]]) -> None:
        self.run_id = run_id
        self._lines = lines

    @classmethod
    def read(cls, path: Path, run_id: str) -> WorkerLog:
        lines: dict[str, list[str]] = {}
        if not path.is_file():  # absent, or not a regular file that a read would not block on
            return cls(run_id, lines)
        try:
            handle = open(path, encoding="utf-8", errors="replace")
        except OSError:
            return cls(run_id, lines)
        with handle:
            for line in handle:
                if run_id not in line or "job_" not in line:
                    continue
                # Without a backslash no JSON string is escaped, so a single "job_id" names the job
                # (or, nested, no job: the parse at lookup then rejects the line). Otherwise parse now.
                found = _JOB_ID_FIELD.search(line) if "\\" not in line and line.count('"job_id"') == 1 else None
                if found is not None:
                    lines.setdefault(found.group(1), []).append(line)
                elif (parsed := _parse_event(line, run_id)) is not None:
                    lines.setdefault(parsed[0], []).append(line)
        return cls(run_id, lines)

    def event(self, job_id: str) -> LogEvent | None:
        """The job's last event (latest time; the later line on a tie)."""
        last: LogEvent | None = None
        for line in self._lines.get(job_id, ()):
            parsed = _parse_event(line, self.run_id)
            if parsed is not None and parsed[0] == job_id and (last is None or last.end <= parsed[1].end):
                last = parsed[1]
        return last


_ID_KEYS = {key: (f'"{key}"'.encode(), re.compile(rf'"{key}"\s*:\s*"([^"]*)"'.encode())) for key in ("run_id", "job_id")}


def _names_only(data: bytes, key: str, expected: str) -> bool:
    """Whether `key` appears at most once in the JSON text, and then as a key with the string `expected`.

    Without a backslash no JSON string is escaped, so parsing could find no other value for it.
    """
    quoted, key_value = _ID_KEYS[key]
    found = key_value.findall(data)
    return b"\\" not in data and data.count(quoted) == len(found) <= 1 and found in ([], [expected.encode()])


def _metadata_mismatch(path: str, run_id: str, job_id: str, rel_folder: str) -> str | None:
    head = _read_head(path, 1 << 20)
    if head is None:
        return None
    if _names_only(head[0], "run_id", run_id) and _names_only(head[0], "job_id", job_id):
        return None  # most folders: their own run and job, told without parsing the JSON
    try:
        meta = json.loads(head[0].decode("utf-8", errors="replace"))
    except _GARBAGE:
        return None
    if not isinstance(meta, dict):
        return None
    expected = {"run_id": run_id, "job_id": job_id}
    wrong = {k: v for k in expected if (v := meta.get(k)) is not None and str(v) != expected[k]}
    if not wrong:
        return None
    said = ", ".join(f"{k} {v!r}" for k, v in wrong.items())
    return f"{rel_folder}/metadata.json names {said}"


@attrs.frozen(slots=False)
class Recorded:
    """What a job's CSV row(s) record, which the scan checks against the disk."""

    paths: tuple[str, ...] = ()
    previews: tuple[str, str, str] = ("", "", "")
    gen_object: str = ""
    settled: Status | None = None
    """A terminal status the row already holds with its times: that marker's time is of no use."""
    times_known: bool = False
    """The row(s) hold a generation start and an end: evidence of times (log, file times) is of no use."""


Entry = tuple[int, float, bool]
"""A listed file: size, mtime, and whether it is a regular file."""


class Folder:
    """One listing of a job's outputs folder; a file is stat-ed only when first asked about.

    `kinds` holds every listed name: True for a regular file, False for anything else, None for a
    symbolic link (whose target decides). A folder whose metadata.json names another job lists nothing.
    """

    def __init__(
        self,
        kinds: Mapping[str, bool | None] | None = None,
        stat: Callable[[str, bool], Entry | None] | None = None,
        mismatch: str | None = None,
    ) -> None:
        self.kinds: Mapping[str, bool | None] = kinds or {}
        self.mismatch = mismatch
        self._stat = stat
        self._entries: dict[str, Entry | None] = {}

    def get(self, name: str) -> Entry | None:
        """The file's entry; None when it is not listed, cannot be stat-ed or links out of the workspace."""
        if name not in self.kinds or self._stat is None:
            return None
        if name not in self._entries:
            self._entries[name] = self._stat(name, self.kinds[name] is None)
        return self._entries[name]

    def is_regular(self, name: str) -> bool:
        if self.kinds.get(name) is True:
            return True
        entry = self.get(name)
        return entry is not None and entry[2]

    def files(self) -> dict[str, Entry]:
        """Every listed name that could be stat-ed, with its entry."""
        return {name: entry for name in self.kinds if (entry := self.get(name)) is not None}


def name_in_folder(path: str, folder: str) -> str | None:
    """The file name of `path` when it lies directly in `folder` (both workspace-relative POSIX)."""
    if len(path) > len(folder) + 1 and path.startswith(folder) and path[len(folder)] == "/":
        name = path[len(folder) + 1 :]
        return None if "/" in name else name
    return None


Chosen = tuple[str, Entry]


def choose_object(rel_folder: str, folder: Folder, named: Chosen | None) -> tuple[Chosen | None, tuple[str, ...]]:
    """The job's object: the file its row names if non-empty, else generated.glb, else the newest *.glb.

    Returns it (workspace-relative path and entry) and, when several *.glb were candidates, all of them.
    """
    if named is not None and named[1][2] and named[1][0] > 0:
        return named, ()
    generated = folder.get("generated.glb")
    if generated is not None and generated[2] and generated[0] > 0:
        return (f"{rel_folder}/generated.glb", generated), ()
    glbs = sorted(
        (e[1], f"{rel_folder}/{n}", e)
        for n in folder.kinds
        if n.lower().endswith(".glb") and (e := folder.get(n)) is not None and e[2] and e[0] > 0
    )
    if not glbs:
        return None, ()
    return (glbs[-1][1], glbs[-1][2]), (tuple(rel for _, rel, _ in glbs) if len(glbs) > 1 else ())


def _list_names(folder: str, folders_only: bool = False) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries if not folders_only or e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    except OSError as error:
        raise _unreadable(folder, error) from None


_NO_MARKERS: frozenset[str] = frozenset()
_ERROR_ONLY = frozenset({"error.txt"})


def _markers_by_job(names: list[str]) -> dict[str, frozenset[str]]:
    """The kinds of state files of each job, from the names in state/ (other names are not markers)."""
    found: dict[str, list[str]] = {}
    for name in names:
        if name.endswith(".error.txt"):
            found.setdefault(name[: -len(".error.txt")], []).append("error.txt")
            continue
        job_id, _, kind = name.rpartition(".")
        if kind in _MARKER_KINDS:
            found.setdefault(job_id, []).append(kind)
    shared: dict[frozenset[str], frozenset[str]] = {}  # a few distinct sets for 100,000 jobs
    return {job_id: shared.setdefault(kinds := frozenset(found_kinds), kinds) for job_id, found_kinds in found.items()}


def _unreadable(folder: str, error: OSError) -> InputError:
    # Unreadable is not empty: reading it as empty would downgrade every completed job.
    return InputError(f"{folder}: cannot be read ({error.strerror or error}); nothing was changed")


class RunScanner:
    """Scans one run: one listing of state/ and outputs/ up front, then one listing per job folder."""

    def __init__(self, resolver: PathResolver, run_id: str) -> None:
        self.run_id = validate_id(run_id, "run_id")
        self.workspace = str(resolver.workspace)
        self._layout_roots = resolver.layout_roots(run_id)
        self._state = str(resolver.state_dir(run_id))
        self._outputs = str(resolver.outputs_dir(run_id))
        self._rel_outputs = f"runs/{run_id}/outputs"
        self._markers = _markers_by_job(_list_names(self._state))
        self.output_folders = frozenset(
            name for name in _list_names(self._outputs, folders_only=True) if ID_PATTERN.fullmatch(name)
        )
        self._worker_log_path = resolver.worker_log_path()
        self._worker_log: WorkerLog | None = None

    @property
    def worker_log(self) -> WorkerLog:
        """The run's worker.log events, read when first needed (a settled job never needs them)."""
        if self._worker_log is None:
            self._worker_log = WorkerLog.read(self._worker_log_path, self.run_id)
        return self._worker_log

    def markers(self, job_id: str) -> frozenset[str]:
        """The kinds of the job's files in state/ (inprogress, completed, failed, error.txt)."""
        return self._markers.get(job_id, _NO_MARKERS)

    def marker_at(self, job_id: str, kind: str) -> dt.datetime | None:
        """The time of one of the job's markers (None if it has none of that kind)."""
        return marker_time(f"{self._state}{os.sep}{job_id}.{kind}") if kind in self.markers(job_id) else None

    def job_ids_on_disk(self) -> set[str]:
        """Jobs with a marker or an outputs folder (error.txt alone is not a job's trace)."""
        marked = {job_id for job_id, kinds in self._markers.items() if not kinds <= _ERROR_ONLY}
        return {job_id for job_id in marked - self.output_folders if ID_PATTERN.fullmatch(job_id)} | self.output_folders

    def folder_rel(self, job_id: str) -> str:
        return f"{self._rel_outputs}/{job_id}"

    def folder(self, job_id: str) -> Folder:
        """One listing of the job's outputs folder (names and kinds; files are stat-ed when asked about)."""
        if job_id not in self.output_folders:
            return _NO_FOLDER
        path = f"{self._outputs}{os.sep}{job_id}"
        try:
            with os.scandir(path) as entries:
                kinds = {e.name: e.is_file(follow_symlinks=False) or (None if e.is_symlink() else False) for e in entries}
        except (FileNotFoundError, NotADirectoryError):
            return _NO_FOLDER
        except OSError as error:
            # An unreadable folder is no evidence of a missing object: refuse rather than downgrade.
            raise _unreadable(path, error) from None

        def stat_file(name: str, link: bool) -> Entry | None:
            # A link counts only if it resolves inside the job's own folder (wherever that folder really is).
            return self._entry(f"{path}{os.sep}{name}", (os.path.realpath(path),) if link else None)

        folder = Folder(kinds, stat_file)
        if "metadata.json" in kinds:
            mismatch = _metadata_mismatch(os.path.join(path, "metadata.json"), self.run_id, job_id, self.folder_rel(job_id))
            if mismatch is not None:
                return Folder(mismatch=mismatch)
        return folder

    def _stat(self, rel: str) -> Entry | None:
        # Any component of a recorded path may be a link leading out of the workspace.
        return self._entry(os.path.join(self.workspace, rel), self._layout_roots) if is_safe_relative(rel) else None

    def _entry(self, path: str, roots: Sequence[str] | None) -> Entry | None:
        """The file's entry (following links); None if it cannot be stat-ed, or resolves outside `roots` when given."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if roots is not None and not resolves_within(path, roots):
            return None
        return (st.st_size, st.st_mtime, stat.S_ISREG(st.st_mode))

    def _is_png(self, rel: str) -> bool:
        head = _read_head(os.path.join(self.workspace, rel), len(PNG_SIGNATURE))
        return head is not None and head[0] == PNG_SIGNATURE

    def evidence(self, job_id: str, recorded: Recorded = Recorded(), folder: Folder | None = None) -> Evidence:
        """Everything the disk says about one job (`folder`: its listing, if already taken)."""
        kinds = self.markers(job_id)
        rel_folder = self.folder_rel(job_id)
        listing = self.folder(job_id) if folder is None else folder

        def lookup(rel: str) -> Entry | None:
            posix = to_posix(rel)
            name = name_in_folder(posix, rel_folder)
            return listing.get(name) if name is not None else self._stat(posix)

        existing = frozenset(
            to_posix(p) for p in {*recorded.paths, *recorded.previews} if p and (e := lookup(p)) is not None and e[2]
        )
        named_entry = lookup(recorded.gen_object) if recorded.gen_object else None
        named = (to_posix(recorded.gen_object), named_entry) if named_entry is not None else None
        chosen, candidates = choose_object(rel_folder, listing, named)

        settled = None if recorded.settled is None else recorded.settled.value
        if settled == Status.COMPLETED.value and chosen is None:
            settled = None  # its time will be quoted in the conflict
        times = {kind: self.marker_at(job_id, kind) for kind in kinds if kind != "error.txt" and kind != settled}
        error_text = read_error_text(f"{self._state}{os.sep}{job_id}.error.txt") if "error.txt" in kinds else None

        previews = ["", "", ""]
        invalid: list[str] = []
        for slot in range(3):
            if recorded.previews[slot] and to_posix(recorded.previews[slot]) in existing:
                continue
            name = f"preview_{slot + 1}.png"
            entry = listing.get(name)
            if entry is None:
                continue
            rel = f"{rel_folder}/{name}"
            if entry[2] and entry[0] >= len(PNG_SIGNATURE) and self._is_png(rel):
                previews[slot] = rel
            else:
                invalid.append(rel)

        earliest = None if recorded.times_known else min((e[1] for e in listing.files().values() if e[2]), default=None)
        return Evidence(
            inprogress_at=times.get("inprogress"),
            completed_at=times.get("completed"),
            failed_at=times.get("failed"),
            has_inprogress="inprogress" in kinds,
            has_completed="completed" in kinds,
            has_failed="failed" in kinds,
            object_path=chosen[0] if chosen else None,
            object_size=chosen[1][0] if chosen else 0,
            object_mtime=_utc(chosen[1][1]) if chosen else None,
            object_candidates=candidates,
            previews=(previews[0], previews[1], previews[2]),
            invalid_previews=tuple(invalid),
            earliest_output_at=None if earliest is None else _utc(earliest),
            existing_paths=existing,
            error_text=error_text,
            metadata_mismatch=listing.mismatch,
            log_event=None if recorded.times_known else self.worker_log.event(job_id),
        )


_NO_FOLDER = Folder()
