"""Duplicate rows of one job merged into one, by status precedence and then column by column."""

from __future__ import annotations

from collections.abc import Sequence

from archi3d.columns import GENERATIONS_COLUMNS, PATH_COLUMNS
from archi3d.model import GenerationRow
from archi3d.paths import to_posix
from archi3d.reconcile import Conflict

__all__ = ["merge_duplicates", "merge_winner"]


def merge_winner(rows: Sequence[GenerationRow]) -> GenerationRow:
    """The row of highest status precedence; the first of them on a tie."""
    return max(rows, key=lambda r: r.status.precedence)


def merge_duplicates(rows: Sequence[GenerationRow], existing_paths: frozenset[str]) -> tuple[GenerationRow, Conflict]:
    """One row from several rows of one job: highest status wins, then column by column.

    Non-empty beats empty, for paths an existing file (one of `existing_paths`) beats a missing one,
    error_msg comes from the winner only. Every cell keeps the text of the row it came from; the merged
    row stands at the first's line. The conflict names which row each column came from.
    """
    winner = merge_winner(rows)
    ordered = [winner, *(r for r in rows if r is not winner)]
    first = rows[0]
    cells: dict[str, str] = {}
    taken: dict[str, list[str]] = {}
    columns = [*GENERATIONS_COLUMNS, *dict.fromkeys(c for r in rows for c in r.extra)]
    for column in columns:
        values = [r.source.get(column, r.cell(column)) for r in ordered]
        if column == "error_msg":
            index = 0
        elif column in PATH_COLUMNS:
            existing = next((i for i, v in enumerate(values) if v and to_posix(v) in existing_paths), None)
            index = existing if existing is not None else next((i for i, v in enumerate(values) if v), 0)
        else:
            index = next((i for i, v in enumerate(values) if v), 0)
        cells[column] = values[index]
        source = ordered[index]
        if source is not first and values[index] != first.source.get(column, ""):
            taken.setdefault(f"line {source.line}", []).append(column)
    merged = GenerationRow.from_cells(cells, line=first.line)
    lines = ", ".join(str(r.line) for r in rows)
    detail = f"rows at lines {lines} merged; winner line {winner.line} ({winner.status})"
    if taken:
        detail += "; " + "; ".join(f"from {where}: {', '.join(cols)}" for where, cols in taken.items())
    return merged, Conflict(first.job_id, "duplicate_rows", detail)
