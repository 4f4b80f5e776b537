"""The fast path: a job whose one row reconciling is sure to leave as it is, told from a few cells and the listings."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import NamedTuple

from archi3d.model import Status
from archi3d.scan import Folder, choose_object, name_in_folder

__all__ = ["RowFacts", "is_settled"]

_COMPLETED = Status.COMPLETED.value
_FAILED = Status.FAILED.value
_WAITING = (Status.ENQUEUED.value, Status.RUNNING.value)


class RowFacts(NamedTuple):
    """The cells of a row that reconciling can act on."""

    status: str
    gen_object_path: str
    previews: tuple[str, str, str]
    times_complete: bool
    """generation_start, generation_end and generation_duration_s all filled."""
    has_error_msg: bool
    has_backslash: bool
    """In any *_path cell (reconciling rewrites those as POSIX paths)."""


def is_settled(
    facts: RowFacts,
    markers: Collection[str],
    folder: Folder,
    folder_rel: str,
    heartbeat: Callable[[Status], Status] | None = None,
) -> bool:
    """True only when reconcile would return this row unchanged, with no conflict and nothing to count.

    `markers` are the kinds of the job's state files (inprogress, completed, failed, error.txt),
    `folder` the listing of its outputs folder (`folder_rel`), and `heartbeat` gives the status a
    lone .inprogress marker implies for a row of the given status (reconcile.heartbeat_status).
    False means "not sure": reconcile it. Every rule here mirrors one of reconcile's; tests check
    that settled rows come out of reconcile untouched.
    """
    if facts.has_backslash or folder.mismatch is not None:
        return False
    status = facts.status
    if "inprogress" in markers:
        # Only a waiting or running row beside a heartbeat that leaves it as it is (a stale one
        # requeued, a fresh one running); with any terminal marker, reconcile decides.
        if heartbeat is None or "completed" in markers or "failed" in markers or status not in _WAITING:
            return False
        if heartbeat(Status(status)).value != status:
            return False
    if "completed" in markers and ("failed" in markers or status != _COMPLETED):
        return False
    if "failed" in markers and status != _FAILED:
        return False
    if status in (_COMPLETED, _FAILED) and not facts.times_complete:
        return False
    if status == _FAILED and not facts.has_error_msg and "error.txt" in markers:
        return False
    named = None
    if facts.gen_object_path:
        name = name_in_folder(facts.gen_object_path, folder_rel)
        if name is None:  # outside its folder (legacy layout): only the full scan looks there
            return False
        entry = folder.get(name)
        named = None if entry is None else (facts.gen_object_path, entry)
    chosen, candidates = choose_object(folder_rel, folder, named)
    if candidates or (chosen is None and status == _COMPLETED):
        return False
    if chosen is not None and chosen[0] != facts.gen_object_path:
        return False
    for slot, recorded in enumerate(facts.previews, 1):
        if recorded:
            name = name_in_folder(recorded, folder_rel)
            if name is None or not folder.is_regular(name):
                return False
        elif f"preview_{slot}.png" in folder.kinds:
            return False
    return True
