"""What a consolidate run counted and found: the record appended to logs/metrics.log and returned."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from archi3d.reconcile import Conflict

__all__ = ["COUNTERS", "MAX_CONFLICTS", "Counts", "Summary"]

MAX_CONFLICTS = 100
"""Conflicts the record keeps (the summary holds them all)."""


@attrs.frozen
class Counts:
    """The counters of DESIGN.md's summary record.

    considered = upsert_inserted + upsert_updated + unchanged + duplicate_rows_merged.
    """

    considered: int = 0
    upsert_inserted: int = 0
    upsert_updated: int = 0
    unchanged: int = 0
    duplicate_rows_merged: int = 0
    conflicts_resolved: int = 0
    marker_mismatches_fixed: int = 0
    downgraded_missing_output: int = 0
    missing_outputs: int = 0
    invalid_previews: int = 0
    not_in_manifest: int = 0
    orphans: int = 0
    objects_changed: int = 0
    """Completed jobs whose object is no longer the file whose hash was recorded."""


COUNTERS = tuple(field.name for field in attrs.fields(Counts))


@attrs.frozen(kw_only=True)
class Summary(Counts):
    """One consolidate run: its counters, status histograms and conflicts."""

    run_id: str
    dry_run: bool
    strict: bool
    written: bool
    """Whether the table was replaced."""
    status_histogram_before: Mapping[str, int]
    """Rows of the considered jobs in the file, by status, before."""
    status_histogram_after: Mapping[str, int]
    conflicts: tuple[Conflict, ...]
    timestamp: str
    elapsed_s: float
    report: str | None = None
    """The change report written, if one was asked for."""

    def to_record(self) -> dict[str, Any]:
        """The metrics.log record: every field, the first MAX_CONFLICTS conflicts, and whether there were more."""
        return {
            "event": "consolidate",
            "timestamp": self.timestamp,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "strict": self.strict,
            "written": self.written,
            **{name: getattr(self, name) for name in COUNTERS},
            "status_histogram_before": dict(self.status_histogram_before),
            "status_histogram_after": dict(self.status_histogram_after),
            "conflicts": [c.to_record() for c in self.conflicts[:MAX_CONFLICTS]],
            "conflicts_truncated": len(self.conflicts) > MAX_CONFLICTS,
            "report": self.report,
            "elapsed_s": self.elapsed_s,
        }
