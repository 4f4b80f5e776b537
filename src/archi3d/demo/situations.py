"""The situations a demo run covers: their names, their shares of the run's jobs, and the counts that follow."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CLEAN", "OUTSIDE_MANIFEST", "SITUATIONS", "situation_counts"]

CLEAN = "clean_completed"
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
    "object_changed": 0.005,
}
# Situations with two variants (e.g. both numeric-looking id shapes) get both even in a small run.
_AT_LEAST_TWO = frozenset({"numeric_looking_ids", "manifest_only_with_evidence", "duplicate_rows", "fresh_heartbeat"})
SITUATIONS: tuple[str, ...] = (CLEAN, *_SHARES)
OUTSIDE_MANIFEST = frozenset({"orphan", "not_in_manifest"})


def situation_counts(jobs: int) -> dict[str, int]:
    """How many of the main run's jobs each situation gets."""
    counts = _special_counts(jobs)
    clean = jobs - sum(counts.values())
    if clean < 1:
        least = next(n for n in range(jobs + 1, 10 * len(SITUATIONS)) if n > sum(_special_counts(n).values()))
        raise ValueError(f"jobs={jobs} is too few to hold every situation; use at least {least}")
    return {CLEAN: clean, **counts}


def _special_counts(jobs: int) -> dict[str, int]:
    return {name: max(_minimum(name), round(share * jobs)) for name, share in _SHARES.items()}


def _minimum(situation: str) -> int:
    return 2 if situation in _AT_LEAST_TWO else 1
