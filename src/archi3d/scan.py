"""The evidence of one run: what its state/ and outputs/ folders and the worker log say about each job."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Collection, Iterable

import attrs

from archi3d.errors import InputError
from archi3d.files import file_time, is_png, marker_time, read_error_text, sha256_of
from archi3d.formats import ID_PATTERN, PNG_SIGNATURE
from archi3d.listing import Chosen, FileEntry, Listing, choose_object, list_job_folder, name_in_folder, stat_entry
from archi3d.model import Evidence, TimeEvidence
from archi3d.paths import PathResolver, is_safe_relative, resolves_within, to_posix, validate_id
from archi3d.rules import hash_settled, may_complete
from archi3d.worker_log import WorkerLog

__all__ = ["MARKER_KINDS", "Recorded", "RunScanner"]

MARKER_KINDS = frozenset({"inprogress", "completed", "failed"})
_ERROR_ONLY = frozenset({"error.txt"})
_NO_MARKERS: frozenset[str] = frozenset()
_NO_FOLDER = Listing()


@attrs.frozen(slots=False)
class Recorded:
    """What a job's CSV row(s) record, which the scan checks against the disk."""

    paths: tuple[str, ...] = ()
    previews: tuple[str, str, str] = ("", "", "")
    gen_object: str = ""
    completed: bool = False
    """A row of the job says `completed`."""
    sha256: str = ""
    bytes: int | None = None
    """The object's hash and size as the row records them."""
    times_known: bool = False
    """The row(s) hold a generation start and an end: time evidence (log, file times) is of no use."""


def _unreadable(folder: str, error: OSError) -> InputError:
    # Unreadable is not empty: reading it as empty would downgrade every completed job.
    return InputError(f"{folder}: cannot be read ({error.strerror or error}); nothing was changed")


def _list_names(folder: str, folders_only: bool = False) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries if not folders_only or e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    except OSError as error:
        raise _unreadable(folder, error) from None


def _markers_by_job(names: Iterable[str]) -> dict[str, frozenset[str]]:
    """The kinds of state files of each job, from the names in state/ (other names are not markers)."""
    found: dict[str, tuple[str, ...]] = {}  # tuples of text, which the collector stops tracking
    for name in names:
        if name.endswith(".error.txt"):
            job_id, kind = name[: -len(".error.txt")], "error.txt"
        else:
            job_id, _, kind = name.rpartition(".")
            if kind not in MARKER_KINDS:
                continue
        found[job_id] = (*found.get(job_id, ()), kind)
    shared: dict[frozenset[str], frozenset[str]] = {}  # a few distinct sets for 100,000 jobs
    return {job_id: shared.setdefault(kinds := frozenset(found_kinds), kinds) for job_id, found_kinds in found.items()}


def _entries(listing: Listing, folder: str) -> Callable[[str], FileEntry | None]:
    """The entry of a name in the listed folder, each name stat-ed at most once (links and *.glb were, when listed)."""
    known = dict(listing.stated)

    def entry(name: str) -> FileEntry | None:
        if name not in known:
            known[name] = stat_entry(f"{folder}{os.sep}{name}") if name in listing.kinds else None
        return known[name]

    return entry


class RunScanner:
    """Scans one run: one listing of state/ and outputs/ up front, then one listing per job folder."""

    def __init__(self, resolver: PathResolver, run_id: str, jobs: Collection[str] | None = None) -> None:
        """`jobs`: scan only these jobs (their marker names are looked up, state/ and outputs/ not listed)."""
        self.run_id = validate_id(run_id, "run_id")
        self.workspace = str(resolver.workspace)
        self._layout_roots = resolver.layout_roots(run_id)
        self._state = str(resolver.state_dir(run_id))
        self._outputs = str(resolver.outputs_dir(run_id))
        self._rel_outputs = f"runs/{run_id}/outputs"
        if jobs is None:
            self._markers = _markers_by_job(_list_names(self._state))
            names = _list_names(self._outputs, folders_only=True)
        else:
            kinds = (*MARKER_KINDS, "error.txt")
            self._markers = _markers_by_job(
                f"{job}.{kind}"
                for job in jobs
                for kind in kinds
                if os.path.lexists(f"{self._state}{os.sep}{job}.{kind}")
            )
            names = [job for job in jobs if os.path.isdir(f"{self._outputs}{os.sep}{job}")]
        self.output_folders = frozenset(name for name in names if ID_PATTERN.fullmatch(name))
        self._only = None if jobs is None else frozenset(jobs)
        self._worker_log_path = resolver.worker_log_path()
        self._worker_log: WorkerLog | None = None

    @property
    def worker_log(self) -> WorkerLog:
        """The run's worker.log events, read when first needed (a job whose row has its times never needs them)."""
        if self._worker_log is None:
            self._worker_log = WorkerLog.read(self._worker_log_path, self.run_id, self._only)
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

    def listing(self, job_id: str) -> Listing:
        """One listing of the job's outputs folder."""
        if job_id not in self.output_folders:
            return _NO_FOLDER
        path = f"{self._outputs}{os.sep}{job_id}"
        try:
            listing = list_job_folder(path, self.folder_rel(job_id), self.run_id, job_id)
        except OSError as error:
            # An unreadable folder is no evidence of a missing object: refuse rather than downgrade.
            raise _unreadable(path, error) from None
        return _NO_FOLDER if listing is None else listing

    def _stat_outside_folder(self, rel: str) -> FileEntry | None:
        # Any component of a recorded path may be a link: it must resolve in the workspace or the run's layout folders.
        if not is_safe_relative(rel):
            return None
        path = os.path.join(self.workspace, rel)
        entry = stat_entry(path)
        return entry if entry is not None and resolves_within(path, self._layout_roots) else None

    def evidence(self, job_id: str, recorded: Recorded, listing: Listing, verify_hashes: bool = False) -> Evidence:
        """Everything the disk says about one job (`listing`: its outputs folder, as listed).

        The object of a job that may end completed is hashed, unless the row's recorded hash still
        describes it (the same file, of the recorded size) and `verify_hashes` is not asked for.
        """
        kinds = self.markers(job_id)
        folder_rel = self.folder_rel(job_id)
        folder = f"{self._outputs}{os.sep}{job_id}"
        entry_of = _entries(listing, folder)

        def lookup(rel: str) -> FileEntry | None:
            posix = to_posix(rel)
            name = name_in_folder(posix, folder_rel)
            return self._stat_outside_folder(posix) if name is None else entry_of(name)

        existing = frozenset(
            to_posix(p)
            for p in {*recorded.paths, *recorded.previews}
            if p and (e := lookup(p)) is not None and e.is_file
        )
        named_entry = lookup(recorded.gen_object) if recorded.gen_object else None
        named = Chosen(to_posix(recorded.gen_object), named_entry) if named_entry is not None else None
        chosen, candidates = choose_object(folder_rel, listing, named)

        previews = ["", "", ""]
        invalid: list[str] = []
        for slot, recorded_preview in enumerate(recorded.previews):
            if recorded_preview and to_posix(recorded_preview) in existing:
                continue
            name = f"preview_{slot + 1}.png"
            entry = entry_of(name)
            if entry is None:
                continue
            rel = f"{folder_rel}/{name}"
            if entry.is_file and entry.size >= len(PNG_SIGNATURE) and is_png(f"{folder}{os.sep}{name}"):
                previews[slot] = rel
            else:
                invalid.append(rel)

        return Evidence(
            markers=kinds,
            inprogress_at=self.marker_at(job_id, "inprogress"),
            completed_at=self.marker_at(job_id, "completed"),
            failed_at=self.marker_at(job_id, "failed"),
            object_path=chosen.path if chosen else None,
            object_size=chosen.entry.size if chosen else 0,
            object_candidates=candidates,
            previews=(previews[0], previews[1], previews[2]),
            invalid_previews=tuple(invalid),
            existing_paths=existing,
            error_text=read_error_text(f"{self._state}{os.sep}{job_id}.error.txt") if "error.txt" in kinds else None,
            metadata_mismatch=listing.mismatch,
            object_sha256=self._object_hash(chosen, recorded, kinds, verify_hashes),
            times=None if recorded.times_known else self._times(job_id, listing, entry_of, chosen),
        )

    def _object_hash(
        self, chosen: Chosen | None, recorded: Recorded, markers: frozenset[str], verify: bool
    ) -> str | None:
        if chosen is None or not may_complete(recorded.completed, markers):
            return None
        same_file = chosen.path == to_posix(recorded.gen_object)
        if same_file and hash_settled(recorded.sha256, recorded.bytes, chosen.entry.size, verify):
            return None
        return self.object_sha256(chosen.path)

    def object_sha256(self, rel: str) -> str | None:
        """The hash of a workspace file (its path relative to the workspace); None if it cannot be read."""
        return sha256_of(os.path.join(self.workspace, rel))

    def _times(
        self, job_id: str, listing: Listing, entry_of: Callable[[str], FileEntry | None], chosen: Chosen | None
    ) -> TimeEvidence:
        """When the job ran, by its worker.log event and its files' times."""
        entries = (entry_of(name) for name in listing.kinds)
        earliest = min((entry.mtime for entry in entries if entry is not None and entry.is_file), default=None)
        return TimeEvidence(
            log_event=self.worker_log.event(job_id),
            object_mtime=file_time(chosen.entry.mtime) if chosen else None,
            earliest_output_at=None if earliest is None else file_time(earliest),
        )
