"""DESIGN.md's rules for one job, as pure functions of values: the status truth table, its conflicts, and
the small rules (times, error text) that the reconciler and the settled check both apply."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection
from typing import NamedTuple

import attrs

from archi3d.model import Status

__all__ = [
    "DOWNGRADED",
    "DOWNGRADE_MESSAGE",
    "Judgement",
    "Options",
    "Rule",
    "Signals",
    "StalePolicy",
    "hash_settled",
    "is_fresh",
    "judge",
    "may_complete",
    "takes_error_text",
    "times_settled",
]

DOWNGRADED = "downgraded by consolidate"
DOWNGRADE_MESSAGE = f"missing generated.glb; {DOWNGRADED}"
TERMINAL = (Status.COMPLETED, Status.FAILED)


class StalePolicy(enum.Enum):
    REQUEUE = "requeue"
    FAIL = "fail"
    KEEP = "keep"


@attrs.frozen
class Options:
    fix_status: bool = True
    heartbeat_timeout: float = 600.0
    stale_policy: StalePolicy = StalePolicy.REQUEUE
    verify_hashes: bool = False
    """Hash every completed job's object again, even when its recorded size still matches."""


class Rule(enum.Enum):
    """The rule that decided a job's status (DESIGN.md, "Status truth table"), first match wins."""

    DOWNGRADE = "override: a completed row without its object is failed"
    COMPLETED = "1: .completed marker and a non-empty object"
    FAILED = "2: .failed marker"
    RERUN_BESIDE_TERMINAL = "monotonic: a heartbeat beside a completed (or downgraded) row keeps it"
    FRESH_HEARTBEAT = "3: fresh .inprogress heartbeat"
    STALE_HEARTBEAT = "4: stale .inprogress heartbeat, --stale-policy decides"
    KEPT = "5: otherwise the CSV status is kept"

    @property
    def from_markers(self) -> bool:
        """Whether a status this rule sets comes from the job's markers (counted as a marker mismatch fixed)."""
        return self in (Rule.COMPLETED, Rule.FAILED, Rule.FRESH_HEARTBEAT, Rule.STALE_HEARTBEAT)


class Signals(NamedTuple):
    """What the status rules look at: the row's status and what the job's markers and folder show."""

    csv: Status
    markers: frozenset[str]
    """Kinds of the job's state markers: inprogress, completed, failed (other names are ignored)."""
    has_object: bool
    several_objects: bool = False
    metadata_mismatch: bool = False
    downgraded: bool = False
    """The row's error_msg says consolidate downgraded it from completed."""
    inprogress_at: dt.datetime | None = None


class Judgement(NamedTuple):
    """The status the rules give a job, the rule that gave it, and the kinds of conflict found on the way."""

    status: Status
    rule: Rule
    conflicts: tuple[str, ...] = ()


def is_fresh(started: dt.datetime | None, options: Options, now: dt.datetime) -> bool:
    """Whether an .inprogress marker of that time is a live heartbeat."""
    return started is not None and (now - started).total_seconds() < options.heartbeat_timeout


def judge(signals: Signals, options: Options, now: dt.datetime) -> Judgement:
    """The status truth table (first match wins), the override and monotonicity, and their conflicts.

    Conflict kinds, in the order they are reported: rerun_beside_completed, completed_and_failed_markers,
    completed_without_object, several_objects, metadata_mismatch, then failed_beside_completed or
    rerun_beside_downgraded.
    """
    csv, markers, has_object = signals.csv, signals.markers, signals.has_object
    inprogress, completed, failed = "inprogress" in markers, "completed" in markers, "failed" in markers
    found = []
    if csv is Status.COMPLETED and has_object and inprogress:
        found.append("rerun_beside_completed")
    if completed and failed:
        found.append("completed_and_failed_markers")
    if completed and not has_object:
        found.append("completed_without_object")
    if signals.several_objects:
        found.append("several_objects")
    if signals.metadata_mismatch:
        found.append("metadata_mismatch")
    if csv is Status.COMPLETED and not has_object:
        return Judgement(Status.FAILED, Rule.DOWNGRADE, tuple(found))
    if completed and has_object:
        return Judgement(Status.COMPLETED, Rule.COMPLETED, tuple(found))
    if failed:
        if csv is Status.COMPLETED:
            found.append("failed_beside_completed")
        return Judgement(Status.FAILED, Rule.FAILED, tuple(found))
    if not inprogress:
        return Judgement(csv, Rule.KEPT, tuple(found))
    if csv is Status.COMPLETED:
        return Judgement(csv, Rule.RERUN_BESIDE_TERMINAL, tuple(found))
    if csv is Status.FAILED and signals.downgraded:
        # It was completed: a heartbeat alone must not take it lower than the downgrade did.
        return Judgement(csv, Rule.RERUN_BESIDE_TERMINAL, (*found, "rerun_beside_downgraded"))
    if is_fresh(signals.inprogress_at, options, now):
        return Judgement(Status.RUNNING, Rule.FRESH_HEARTBEAT, tuple(found))
    stale = {StalePolicy.REQUEUE: Status.ENQUEUED, StalePolicy.FAIL: Status.FAILED}.get(options.stale_policy, csv)
    return Judgement(stale, Rule.STALE_HEARTBEAT, tuple(found))


def times_settled(status: Status, has_start: bool, has_end: bool, has_duration: bool) -> bool:
    """Whether no time rule can fill anything: the job is not finished, or its row holds all three times."""
    return status not in TERMINAL or (has_start and has_end and has_duration)


def may_complete(row_completed: bool, markers: Collection[str]) -> bool:
    """Whether the status rules can give a job `completed`: its row says so, or it has a .completed marker."""
    return row_completed or "completed" in markers


def hash_settled(recorded_sha256: str, recorded_bytes: int | None, size: int, verify: bool) -> bool:
    """Whether a job's recorded hash can stand without hashing its object again: it has one, the
    object's size is the one recorded, and every object is not to be hashed again (`verify`)."""
    return bool(recorded_sha256) and recorded_bytes == size and not verify


def takes_error_text(status: Status, error_msg: str) -> bool:
    """Whether the job takes its error_msg from error.txt (a failed job whose row has none)."""
    return status is Status.FAILED and not error_msg
