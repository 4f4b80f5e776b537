"""The settled check: a job whose one row the reconciler is sure to leave as it is, told from a few of its
cells and the listings, by the same rules (archi3d.rules) the reconciler applies."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from archi3d.listing import Chosen, Listing, choose_object, name_in_folder
from archi3d.model import Status
from archi3d.rules import DOWNGRADED, Options, Signals, hash_settled, judge, takes_error_text, times_settled

__all__ = ["RowFacts", "Settled", "settled"]


_STATUSES = {status.value: status for status in Status}


class RowFacts(NamedTuple):
    """The cells of a job's one row that the rules act on, as text."""

    status: str
    gen_object_path: str
    previews: tuple[str, str, str]
    has_start: bool
    has_end: bool
    has_duration: bool
    error_msg: str
    has_backslash: bool
    """In any *_path cell (the reconciler rewrites those as POSIX paths)."""
    gen_object_sha256: str
    gen_object_bytes: str


class Settled(NamedTuple):
    """A row reconcile leaves as it is, except that it records the hash of `unhashed` (the object of a
    completed row that records no hash yet: no recorded hash, so no hash conflict)."""

    unhashed: Chosen | None = None


def settled(
    facts: RowFacts,
    markers: frozenset[str],
    inprogress_at: dt.datetime | None,
    listing: Listing,
    folder_rel: str,
    options: Options,
    now: dt.datetime,
) -> Settled | None:
    """Settled only when reconcile would return this row unchanged (but for a hash to record), with no
    conflict and nothing to count; None means "not sure".

    `markers` are the kinds of the job's state files, `inprogress_at` the time of its .inprogress
    marker (when it has one), `listing` its outputs folder (`folder_rel`). A path outside the job's
    folder, or a file the listing did not stat, is left to the reconciler.
    """
    if facts.has_backslash or listing.mismatch is not None:
        return None
    named = None
    if facts.gen_object_path:
        name = name_in_folder(facts.gen_object_path, folder_rel)
        if name is None or name not in listing.stated:
            return None
        entry = listing.stated[name]
        named = None if entry is None else Chosen(facts.gen_object_path, entry)
    chosen, candidates = choose_object(folder_rel, listing, named)
    status = _STATUSES[facts.status]
    signals = Signals(
        csv=status,
        markers=markers,
        has_object=chosen is not None,
        several_objects=bool(candidates),
        downgraded=DOWNGRADED in facts.error_msg,
        inprogress_at=inprogress_at,
    )
    judged = judge(signals, options, now)
    if judged.status is not status or judged.conflicts:
        return None
    if not times_settled(status, facts.has_start, facts.has_end, facts.has_duration):
        return None
    if takes_error_text(status, facts.error_msg) and "error.txt" in markers:
        return None
    if chosen is not None and chosen.path != facts.gen_object_path:
        return None
    unhashed = None
    if status is Status.COMPLETED and chosen is not None:
        recorded_bytes = int(facts.gen_object_bytes) if facts.gen_object_bytes.isdigit() else None
        if not hash_settled(facts.gen_object_sha256, recorded_bytes, chosen.entry.size, options.verify_hashes):
            if facts.gen_object_sha256:
                return None  # the object may have changed: a conflict, for the reconciler to describe
            unhashed = chosen
    for slot, recorded in enumerate(facts.previews, 1):
        if recorded:
            name = name_in_folder(recorded, folder_rel)
            if name is None or not listing.is_regular(name):
                return None
        elif f"preview_{slot}.png" in listing.kinds:  # a preview to record, or an invalid one to count
            return None
    return Settled(unhashed)
