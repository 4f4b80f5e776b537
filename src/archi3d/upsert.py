"""update_csv_atomic: the Phase-0 upsert of a table, locked, lossless and atomic."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from archi3d.atomic import write_bytes_atomic
from archi3d.columns import GENERATIONS_COLUMNS
from archi3d.csvtable import Chunk, CsvTable, encode_row, read_csv_table, render_chunks
from archi3d.errors import InputError, WriteFailedError
from archi3d.frame import frame_rows
from archi3d.lock import DEFAULT_LOCK_TIMEOUT, table_lock
from archi3d.schema import GENERATIONS_SCHEMA, check_frame

__all__ = ["TableEdit", "apply_upserts", "update_csv_atomic", "upsert_rows"]


def _is_generations(path: Path) -> bool:
    return path.name == "generations.csv"


@attrs.frozen
class TableEdit:
    """What an upsert changes in a table: its new bytes (in pieces), and the rows it writes."""

    chunks: list[Chunk]
    inserted: int
    updated: int
    header: tuple[str, ...]
    written: list[dict[str, str]]
    written_lines: list[int]


def apply_upserts(table: CsvTable, updates: Sequence[Mapping[str, str]], key_cols: Sequence[str]) -> TableEdit | None:
    """Upsert `updates` (text cells, one per key) into `table` by key; None when no byte would change.

    Every row of the table holding a key gets its given cells, its other cells keep their text (rows
    of one key are never merged or removed: merging duplicates is consolidate's job). A key the table
    lacks is appended. Columns the table lacks go at the tail.
    """
    missing = [k for k in key_cols if k not in table.header]
    if missing and len(table):
        raise InputError(f"{table.name}: key column(s) {', '.join(missing)} not in the table. Nothing was written.")
    added = list(dict.fromkeys(c for u in updates for c in u if c not in table.header))
    header = (*table.header, *added)
    positions = _positions(table, [tuple(u[k] for k in key_cols) for u in updates], key_cols)
    replaced: dict[int, bytes] = {}
    appended: list[bytes] = []
    written: list[dict[str, str]] = []
    lines: list[int] = []
    next_line = table.lines[-1] + 1 if len(table) else 2
    for update in updates:
        at = positions.get(tuple(update[k] for k in key_cols))
        if at is None:
            row = {c: update.get(c, "") for c in header}
            appended.append(encode_row(list(row.values()), table.newline))
            written.append(row)
            lines.append(next_line)
            next_line += 1
            continue
        for index in at:
            before = table.record(index)
            if all(before.get(c, "") == text for c, text in update.items()):
                continue
            row = {c: update.get(c, before.get(c, "")) for c in header}
            replaced[index] = encode_row(list(row.values()), table.newline)
            written.append(row)
            lines.append(table.lines[index])
    if not replaced and not appended:
        return None
    chunks = render_chunks(table, replaced, appended, added)
    return TableEdit(chunks, len(appended), len(replaced), header, written, lines)


def _positions(
    table: CsvTable, keys: Sequence[tuple[str, ...]], key_cols: Sequence[str]
) -> dict[tuple[str, ...], list[int]]:
    """The rows of the table holding each of `keys`, found by arrow (only the candidate rows reach Python)."""
    if not keys or not len(table):
        return {}
    mask = None
    for at, name in enumerate(key_cols):
        wanted = pa.array(sorted({key[at] for key in keys}), type=pa.string())
        hit = pc.is_in(table.cells.column(name), value_set=wanted)
        mask = hit if mask is None else pc.and_(mask, hit)
    # mask is None when key_cols is empty: arrow then raises ArrowNotImplementedError, as it always has.
    candidates: list[int] = pc.indices_nonzero(mask).to_pylist()  # type: ignore[arg-type]
    found: dict[tuple[str, ...], list[int]] = {}
    wanted_keys = set(keys)
    for index, *key in zip(candidates, *table.columns(candidates, key_cols).values()):
        if tuple(key) in wanted_keys:
            found.setdefault(tuple(key), []).append(index)
    return found


def update_csv_atomic(
    path: str | os.PathLike[str],
    df: pd.DataFrame,
    key_cols: Sequence[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> tuple[int, int]:
    """Upsert the rows of `df` into the CSV at `path` by `key_cols`; returns (rows inserted, rows updated).

    Every cell is text. For an existing key only the columns of `df` are set, in every row holding
    that key; a missing value (None, NaN, NA) leaves the cell as it is, "" clears it. Numbers are
    written as the shortest text that reads back as the same value. Taken under the table lock
    (`path.with_suffix('.lock')`), written as one atomic replace; a missing file is created with a
    UTF-8 BOM. For generations.csv the rows written are validated against its schema.

    Raises InputError (also a ValueError) for a frame or a table that cannot be used, TableError
    for rows that fail the schema, LockTimeoutError or ReplaceRefusedError (also TimeoutError) and
    WriteFailedError (also OSError); in every case the file is left as it was.
    """
    path = Path(path)
    rows = frame_rows(df, key_cols, file=str(path), ids=_is_generations(path))
    return upsert_rows(path, rows, key_cols, lock_timeout=lock_timeout, columns=[str(c) for c in df.columns])


def upsert_rows(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, str]],
    key_cols: Sequence[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    columns: Sequence[str] = (),
) -> tuple[int, int]:
    """update_csv_atomic for rows already made text (frame_rows); rows of one key are applied in turn.

    `columns`: the columns a new table takes after generations.csv's (default: those of the rows).
    """
    path = Path(path)
    updates: dict[tuple[str, ...], dict[str, str]] = {}
    for row in rows:
        updates.setdefault(tuple(row[k] for k in key_cols), {}).update(row)
    if not updates:
        return 0, 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteFailedError.of(path.parent, error, "Nothing was written.") from error
    with table_lock(path, lock_timeout):
        table = _read_or_new(path, columns or list(dict.fromkeys(c for row in rows for c in row)), key_cols)
        edit = apply_upserts(table, list(updates.values()), key_cols)
        if edit is None:
            return 0, 0
        if _is_generations(path):
            frame = pd.DataFrame({c: pd.Series([row[c] for row in edit.written], dtype="str") for c in edit.header})
            check_frame(frame, GENERATIONS_SCHEMA, str(path), edit.written_lines)
        write_bytes_atomic(path, edit.chunks, replace_timeout=lock_timeout)
    return edit.inserted, edit.updated


def _read_or_new(path: Path, columns: Sequence[str], key_cols: Sequence[str]) -> CsvTable:
    """The table (only its key columns parsed), or a new one: generations.csv's columns, then the frame's."""
    if os.path.exists(path):
        return read_csv_table(path, columns=key_cols)
    header = list(GENERATIONS_COLUMNS) if _is_generations(path) else []
    header += [c for c in columns if c not in header]
    return CsvTable.empty(path, header)
