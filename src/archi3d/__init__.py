"""archi3d: workspace layout, safe table I/O and run consolidation for image-to-3D benchmarks."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `X as X`: names this package exports (for type checkers; at run time see __getattr__)
    from archi3d.atomic import append_log_record as append_log_record
    from archi3d.atomic import write_bytes_atomic as write_bytes_atomic
    from archi3d.atomic import write_text_atomic as write_text_atomic
    from archi3d.consolidation import ConsolidateOptions as ConsolidateOptions
    from archi3d.consolidation import Summary as Summary
    from archi3d.consolidation import consolidate as consolidate
    from archi3d.errors import Archi3dError as Archi3dError
    from archi3d.errors import InputError as InputError
    from archi3d.errors import InvalidIdError as InvalidIdError
    from archi3d.errors import LockTimeoutError as LockTimeoutError
    from archi3d.errors import ObjectChangedError as ObjectChangedError
    from archi3d.errors import ReplaceRefusedError as ReplaceRefusedError
    from archi3d.errors import StrictConflictError as StrictConflictError
    from archi3d.errors import TableError as TableError
    from archi3d.errors import UnknownRunError as UnknownRunError
    from archi3d.errors import WriteFailedError as WriteFailedError
    from archi3d.errors import WriteRefusedError as WriteRefusedError
    from archi3d.lock import table_lock as table_lock
    from archi3d.model import Evidence as Evidence
    from archi3d.model import GenerationRow as GenerationRow
    from archi3d.model import Job as Job
    from archi3d.model import Status as Status
    from archi3d.paths import PathResolver as PathResolver
    from archi3d.paths import validate_id as validate_id
    from archi3d.read import object_file as object_file
    from archi3d.read import rows_of_run as rows_of_run
    from archi3d.read import verify_object as verify_object
    from archi3d.rules import StalePolicy as StalePolicy
    from archi3d.upsert import update_csv_atomic as update_csv_atomic
    from archi3d.upserter import TableUpserter as TableUpserter
    from archi3d.upserter import table_upserter as table_upserter

# Imported on first use, so `archi3d --help` and light imports do not pay for pandas and pandera.
_HOMES = {
    "append_log_record": "atomic",
    "write_bytes_atomic": "atomic",
    "write_text_atomic": "atomic",
    "Archi3dError": "errors",
    "InputError": "errors",
    "InvalidIdError": "errors",
    "LockTimeoutError": "errors",
    "ObjectChangedError": "errors",
    "ReplaceRefusedError": "errors",
    "StrictConflictError": "errors",
    "TableError": "errors",
    "UnknownRunError": "errors",
    "WriteFailedError": "errors",
    "WriteRefusedError": "errors",
    "table_lock": "lock",
    "Evidence": "model",
    "GenerationRow": "model",
    "Job": "model",
    "Status": "model",
    "PathResolver": "paths",
    "validate_id": "paths",
    "object_file": "read",
    "rows_of_run": "read",
    "verify_object": "read",
    "StalePolicy": "rules",
    "ConsolidateOptions": "consolidation",
    "Summary": "consolidation",
    "consolidate": "consolidation",
    "update_csv_atomic": "upsert",
    "TableUpserter": "upserter",
    "table_upserter": "upserter",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'archi3d' has no attribute {name!r}")
    return getattr(importlib.import_module(f"archi3d.{home}"), name)
