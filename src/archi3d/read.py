"""The typed read API for later phases (FScore, VFScore, reports)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from archi3d.csvtable import read_csv_table
from archi3d.errors import InputError, ObjectChangedError
from archi3d.files import sha256_of
from archi3d.model import GenerationRow, Status
from archi3d.paths import PathResolver, is_safe_relative, resolves_within, to_posix, validate_id
from archi3d.schema import validate_generations

__all__ = ["object_file", "rows_of_run", "verify_object"]

_STATUSES = ", ".join(s.value for s in Status)


def _resolver(workspace: str | os.PathLike[str] | PathResolver | None) -> PathResolver:
    return workspace if isinstance(workspace, PathResolver) else PathResolver(workspace)


def _status_values(statuses: Iterable[Status | str]) -> set[str]:
    values: set[str] = set()
    for status in statuses:
        try:
            values.add(Status(status).value)
        except ValueError:
            raise InputError(f"statuses: expected {_STATUSES} (or archi3d.Status), found {status!r}") from None
    return values


def rows_of_run(
    workspace: str | os.PathLike[str] | PathResolver | None,
    run_id: str,
    statuses: Iterable[Status | str] | None = None,
) -> list[GenerationRow]:
    """Validated, typed rows of one run in file order, optionally only those with the given statuses.

    `statuses` holds Status members or their text ("completed"). A workspace without a table has no
    rows; a workspace that does not exist raises InputError.
    """
    resolver = _resolver(workspace)
    validate_id(run_id, "run_id")
    wanted = None if statuses is None else _status_values(statuses)
    resolver.check_layout()
    path = resolver.generations_csv_path()
    if not path.exists():
        return []
    table = read_csv_table(path, validate_generations)
    frame = table.frame
    mask = frame["run_id"] == run_id
    if wanted is not None:
        mask &= frame["status"].isin(sorted(wanted))
    indices = frame.index[mask].tolist()
    return [GenerationRow.from_cells(cells, table.lines[i]) for i, cells in zip(indices, table.rows(indices))]


def object_file(workspace: str | os.PathLike[str] | PathResolver | None, row: GenerationRow) -> Path | None:
    """The generated object a row names, if it is a non-empty file where consolidate would accept it.

    That is inside the workspace or a layout folder on the way to the run's outputs (which may be
    links to another disk); a link in the job's own folder must resolve inside that folder.
    """
    resolver = _resolver(workspace)
    if not row.gen_object_path or not is_safe_relative(row.gen_object_path):
        return None
    rel = to_posix(row.gen_object_path)
    path = resolver.workspace / rel
    try:
        job_folder = resolver.job_outputs_dir(row.run_id, row.job_id)
        in_job_folder = Path(rel).parent.as_posix() == resolver.rel_to_workspace(job_folder)
        roots = (os.path.realpath(job_folder),) if in_job_folder else resolver.layout_roots(row.run_id)
        return path if resolves_within(path, roots) and path.is_file() and path.stat().st_size > 0 else None
    except OSError:
        return None


def verify_object(workspace: str | os.PathLike[str] | PathResolver | None, row: GenerationRow) -> Path:
    """The object a completed row names, once its size and SHA-256 are checked against the row's record.

    Call it before computing a metric on the object. Raises ObjectChangedError (an InputError) when
    the row records no hash (consolidate records it), the file is missing, or it is not the file
    whose hash was recorded.
    """
    if not row.gen_object_sha256 or row.gen_object_bytes is None:
        raise ObjectChangedError(f"{row.run_id}/{row.job_id}: no object hash recorded; run archi3d consolidate first")
    path = object_file(workspace, row)
    if path is None:
        raise ObjectChangedError(f"{row.run_id}/{row.job_id}: {row.gen_object_path}: missing or empty")
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ObjectChangedError(f"{row.run_id}/{row.job_id}: {row.gen_object_path}: {error.strerror}") from None
    digest = sha256_of(path) if size == row.gen_object_bytes else None
    if digest != row.gen_object_sha256:
        found = f"{size} bytes" if size != row.gen_object_bytes else f"sha256 {digest or '(unreadable)'}"
        raise ObjectChangedError(
            f"{row.run_id}/{row.job_id}: {row.gen_object_path} is not the object recorded"
            f" (sha256 {row.gen_object_sha256}, {row.gen_object_bytes} bytes): {found}"
        )
    return path
