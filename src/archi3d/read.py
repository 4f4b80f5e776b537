"""The typed read API for later phases (FScore, VFScore, reports)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from archi3d.csvtable import read_csv_table
from archi3d.model import GenerationRow, Status
from archi3d.paths import PathResolver, is_safe_relative, to_posix, validate_id
from archi3d.schema import validate_generations

__all__ = ["object_file", "rows_of_run"]


def _resolver(workspace: str | Path | PathResolver | None) -> PathResolver:
    return workspace if isinstance(workspace, PathResolver) else PathResolver(workspace)


def rows_of_run(
    workspace: str | Path | PathResolver | None, run_id: str, statuses: Iterable[Status] | None = None
) -> list[GenerationRow]:
    """Validated, typed rows of one run in file order, optionally only those with the given statuses."""
    resolver = _resolver(workspace)
    validate_id(run_id, "run_id")
    path = resolver.generations_csv_path()
    if not path.exists():
        return []
    table = read_csv_table(path, validate_generations)
    frame = table.frame
    mask = frame["run_id"] == run_id
    if statuses is not None:
        mask &= frame["status"].isin([s.value for s in statuses])
    indices = frame.index[mask].tolist()
    return [GenerationRow.from_cells(cells, table.lines[i]) for i, cells in zip(indices, table.rows(indices))]


def object_file(workspace: str | Path | PathResolver | None, row: GenerationRow) -> Path | None:
    """The generated object a row names, if it is a non-empty file inside the workspace."""
    resolver = _resolver(workspace)
    if not row.gen_object_path or not is_safe_relative(row.gen_object_path):
        return None
    path = resolver.workspace / to_posix(row.gen_object_path)
    try:
        inside = path.resolve().is_relative_to(resolver.workspace.resolve())
        return path if inside and path.is_file() and path.stat().st_size > 0 else None
    except OSError:
        return None
