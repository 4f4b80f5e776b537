"""What consolidating the demo's main run should decide, per job, and the file that records it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import attrs

__all__ = ["EXPECTATIONS_FILE", "Expectation", "write_expectations"]

EXPECTATIONS_FILE = "demo-expectations.json"


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


def write_expectations(path: Path, expectations: Sequence[Expectation]) -> None:
    records = [attrs.asdict(expectation) for expectation in expectations]
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
