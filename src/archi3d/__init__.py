"""archi3d: workspace layout, safe table I/O and run consolidation for image-to-3D benchmarks."""

from archi3d.atomic import append_log_record, write_bytes_atomic, write_text_atomic
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
from archi3d.consolidate import ConsolidateOptions, Summary, consolidate
from archi3d.model import Evidence, GenerationRow, Job, Status
from archi3d.paths import PathResolver, validate_id
from archi3d.read import object_file, rows_of_run
from archi3d.reconcile import StalePolicy
from archi3d.upsert import update_csv_atomic

__all__ = [
    "Archi3dError",
    "ConsolidateOptions",
    "Evidence",
    "GenerationRow",
    "Job",
    "StalePolicy",
    "Status",
    "Summary",
    "consolidate",
    "object_file",
    "rows_of_run",
    "InputError",
    "InvalidIdError",
    "LockTimeoutError",
    "PathResolver",
    "ReplaceRefusedError",
    "StrictConflictError",
    "TableError",
    "UnknownRunError",
    "WriteRefusedError",
    "append_log_record",
    "update_csv_atomic",
    "validate_id",
    "write_bytes_atomic",
    "write_text_atomic",
]
