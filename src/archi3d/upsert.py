"""update_csv_atomic: the Phase-0 upsert of a table, locked, lossless and atomic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from archi3d.atomic import DEFAULT_LOCK_TIMEOUT, table_lock, write_bytes_atomic
from archi3d.columns import GENERATIONS_COLUMNS
from archi3d.csvtable import CsvTable, encode_row, read_csv_table, render_table
from archi3d.errors import InputError
from archi3d.schema import GENERATIONS_SCHEMA, check_frame, validate_generations

__all__ = ["apply_upserts", "update_csv_atomic"]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _is_generations(path: Path) -> bool:
    return path.name == "generations.csv"


def apply_upserts(
    table: CsvTable, updates: Sequence[Mapping[str, str]], key_cols: Sequence[str]
) -> tuple[bytes | None, int, int, list[tuple[int, dict[str, str]]]]:
    """Upsert `updates` into `table` by key: (new bytes or None if unchanged, inserted, updated, rows written).

    For an existing key only the given columns are set, its other cells keep their text; several rows
    of one key collapse into one, standing where the first stood. Rows written come with their line.
    """
    missing = [k for k in key_cols if k not in table.header and not all(k in u for u in updates)]
    if missing:
        raise InputError(f"{table.name}: key column(s) {', '.join(missing)} not in the table")
    added = list(dict.fromkeys(c for u in updates for c in u if c not in table.header))
    header = [*table.header, *added]
    positions: dict[tuple[str, ...], list[int]] = {}
    for index, key in enumerate(zip(*(table.column(k) for k in key_cols))):
        positions.setdefault(key, []).append(index)
    pending: dict[tuple[str, ...], dict[str, str]] = {}
    for update in updates:
        pending.setdefault(tuple(update.get(k, "") for k in key_cols), {}).update(update)
    existing = [k for k in pending if k in positions]
    current = dict(zip(existing, table.rows([positions[k][0] for k in existing])))
    replaced: dict[int, bytes] = {}
    appended: list[bytes] = []
    written: list[tuple[int, dict[str, str]]] = []
    next_line = table.lines[-1] + 1 if len(table) else 2
    for key, update in pending.items():
        before = current.get(key)
        cells = update if before is None else {**before, **update}
        row = [cells.get(c, "") for c in header]
        if before is None:
            appended.append(encode_row(row, table.newline))
            written.append((next_line, dict(zip(header, row))))
            next_line += 1
            continue
        first, *others = positions[key]
        if others or any(cells.get(c, "") != before.get(c, "") for c in header):
            replaced[first] = encode_row(row, table.newline)
            written.append((table.lines[first], dict(zip(header, row))))
        replaced.update((other, b"") for other in others)
    if not replaced and not appended:
        return None, 0, 0, []
    return render_table(table, replaced, appended, added), len(appended), len(written) - len(appended), written


def update_csv_atomic(
    path: Path,
    df: pd.DataFrame,
    key_cols: Sequence[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> tuple[int, int]:
    """Upsert the rows of `df` into the CSV at `path` by `key_cols`; returns (inserted, updated).

    Every cell is text; a missing value (None/NaN) leaves the existing cell as it is, "" clears it.
    Taken under the table lock (`path.with_suffix('.lock')`), written atomically.
    A file named generations.csv is validated against its schema on read and on write.
    """
    # A missing cell (None, NaN, NA) is "not given": in a frame mixing full rows and partial updates it
    # must not wipe the existing cell. An empty string clears it.
    updates = [{str(k): _text(v) for k, v in record.items() if not _missing(v)} for record in df.to_dict("records")]
    validate = validate_generations if _is_generations(path) else None
    with table_lock(path, lock_timeout):
        if path.exists():
            table = read_csv_table(path, validate)
        else:
            columns = list(GENERATIONS_COLUMNS) if _is_generations(path) else []
            columns += [str(c) for c in df.columns if str(c) not in columns]
            table = CsvTable.empty(path, columns, bom=_is_generations(path))
        data, inserted, updated, written = apply_upserts(table, updates, key_cols)
        if data is None:
            return 0, 0
        if validate is not None and written:
            frame = pd.DataFrame([cells for _, cells in written], dtype="str")
            check_frame(frame, GENERATIONS_SCHEMA, str(path), [line for line, _ in written])
        write_bytes_atomic(path, data)
    return inserted, updated
