"""archi3d: workspace layout, safe table I/O and run consolidation for image-to-3D benchmarks."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archi3d.atomic import append_log_record, write_bytes_atomic, write_text_atomic
    from archi3d.service import ConsolidateOptions, Summary, consolidate
    from archi3d.errors import (
        Archi3dError,
        InputError,
        InvalidIdError,
        LockTimeoutError,
        ReplaceRefusedError,
        StrictConflictError,
        TableError,
        UnknownRunError,
        WriteRefusedError,
    )
    from archi3d.model import Evidence, GenerationRow, Job, Status
    from archi3d.paths import PathResolver, validate_id
    from archi3d.read import object_file, rows_of_run
    from archi3d.reconcile import StalePolicy
    from archi3d.upsert import update_csv_atomic

# Imported on first use, so `archi3d --help` and light imports do not pay for pandas and pandera.
_HOMES = {
    "append_log_record": "atomic",
    "write_bytes_atomic": "atomic",
    "write_text_atomic": "atomic",
    "ConsolidateOptions": "service",
    "Summary": "service",
    "consolidate": "service",
    "Archi3dError": "errors",
    "InputError": "errors",
    "InvalidIdError": "errors",
    "LockTimeoutError": "errors",
    "ReplaceRefusedError": "errors",
    "StrictConflictError": "errors",
    "TableError": "errors",
    "UnknownRunError": "errors",
    "WriteRefusedError": "errors",
    "Evidence": "model",
    "GenerationRow": "model",
    "Job": "model",
    "Status": "model",
    "PathResolver": "paths",
    "validate_id": "paths",
    "object_file": "read",
    "rows_of_run": "read",
    "StalePolicy": "reconcile",
    "update_csv_atomic": "upsert",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'archi3d' has no attribute {name!r}")
    return getattr(importlib.import_module(f"archi3d.{home}"), name)
