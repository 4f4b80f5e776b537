"""A job's outputs folder as one listing (a value), and the rule that picks the job's object from it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from typing import NamedTuple

import attrs

from archi3d.errors import InputError
from archi3d.files import NOT_JSON, read_head
from archi3d.paths import resolves_within

__all__ = ["Chosen", "FileEntry", "Listing", "choose_object", "list_job_folder", "name_in_folder", "stat_entry"]


class FileEntry(NamedTuple):
    """What a stat of a file says (links followed)."""

    size: int
    mtime: float
    is_file: bool


@attrs.frozen(slots=False)
class Listing:
    """One listing of a job's outputs folder.

    A folder whose metadata.json names another run or job lists nothing: none of it is evidence.
    """

    kinds: Mapping[str, bool | None] = attrs.field(factory=dict)
    """Every name: True for a regular file, False for anything else, None for a symbolic link."""
    stated: Mapping[str, FileEntry | None] = attrs.field(factory=dict)
    """The names stat-ed when listed (every *.glb and every link); None: it could not be, or it is a
    link that leads out of the folder."""
    mismatch: str | None = None
    """What metadata.json says that rules the folder out."""

    def is_regular(self, name: str) -> bool:
        if self.kinds.get(name) is True:
            return True
        entry = self.stated.get(name)
        return entry is not None and entry.is_file


def name_in_folder(path: str, folder: str) -> str | None:
    """The file name of `path` when it lies directly in `folder` (both workspace-relative POSIX)."""
    if len(path) > len(folder) + 1 and path.startswith(folder) and path[len(folder)] == "/":
        name = path[len(folder) + 1 :]
        return None if "/" in name else name
    return None


class Chosen(NamedTuple):
    """The file a job's object is: its workspace-relative path and its entry."""

    path: str
    entry: FileEntry


def _usable(entry: FileEntry | None) -> bool:
    return entry is not None and entry.is_file and entry.size > 0


def choose_object(folder_rel: str, listing: Listing, named: Chosen | None) -> tuple[Chosen | None, tuple[str, ...]]:
    """The job's object: the file its row names if non-empty, else generated.glb, else the newest *.glb.

    Returns it and, when several *.glb were candidates, all of them.
    """
    if named is not None and _usable(named.entry):
        return named, ()
    generated = listing.stated.get("generated.glb")
    if generated is not None and _usable(generated):
        return Chosen(f"{folder_rel}/generated.glb", generated), ()
    glbs = [
        (entry.mtime, f"{folder_rel}/{name}", entry)
        for name, entry in listing.stated.items()
        if entry is not None and name.lower().endswith(".glb") and _usable(entry)
    ]
    if not glbs:
        return None, ()
    _, path, entry = max(glbs)
    return Chosen(path, entry), (tuple(rel for _, rel, _ in sorted(glbs)) if len(glbs) > 1 else ())


def stat_entry(path: str, inside: str | None = None) -> FileEntry | None:
    """The file's entry (links followed); None if it cannot be stat-ed, or resolves outside `inside`."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if inside is not None and not resolves_within(path, (inside,)):
        return None
    return FileEntry(st.st_size, st.st_mtime, stat.S_ISREG(st.st_mode))


def list_job_folder(path: str, folder_rel: str, run_id: str, job_id: str) -> Listing | None:
    """The listing of the folder at `path`; None when there is no folder. OSError when it cannot be read."""
    try:
        with os.scandir(path) as entries:
            kinds = {e.name: e.is_file(follow_symlinks=False) or (None if e.is_symlink() else False) for e in entries}
    except (FileNotFoundError, NotADirectoryError):
        return None
    if "metadata.json" in kinds:
        mismatch = _metadata_mismatch(f"{path}{os.sep}metadata.json", run_id, job_id, folder_rel)
        if mismatch is not None:
            return Listing(mismatch=mismatch)
    real = None
    stated: dict[str, FileEntry | None] = {}
    for name, kind in kinds.items():
        glb = name.lower().endswith(".glb")
        if glb:
            _check_name(path, name)
        if kind is None:  # a link counts only if it resolves inside the job's own folder, wherever that really is
            real = real or os.path.realpath(path)
            stated[name] = stat_entry(f"{path}{os.sep}{name}", real)
        elif glb:
            stated[name] = stat_entry(f"{path}{os.sep}{name}")
    return Listing(kinds, stated)


def _check_name(folder: str, name: str) -> None:
    """Refuse an object whose name is not UTF-8: the table, UTF-8 text, could not record its path."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise InputError(
            f"{folder}{os.sep}{shown}: the file name is not UTF-8, so the table cannot record it;"
            " rename the file. Nothing was changed."
        ) from None


def _metadata_mismatch(path: str, run_id: str, job_id: str, folder_rel: str) -> str | None:
    """What metadata.json says against the folder's own run and job, if anything."""
    head = read_head(path, 1 << 20)
    if head is None:
        return None
    try:
        meta = json.loads(head[0].decode("utf-8", errors="replace"))
    except NOT_JSON:
        return None
    if not isinstance(meta, dict):
        return None
    expected = {"run_id": run_id, "job_id": job_id}
    wrong = {k: v for k in expected if (v := meta.get(k)) is not None and str(v) != expected[k]}
    if not wrong:
        return None
    said = ", ".join(f"{k} {v!r}" for k, v in wrong.items())
    return f"{folder_rel}/metadata.json names {said}"
