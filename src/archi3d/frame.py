"""The rows of a DataFrame given to an upsert, as text cells: checked keys, each value's shortest exact text."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from archi3d.errors import InputError
from archi3d.formats import ID_PATTERN

__all__ = ["ID_KEY_COLUMNS", "frame_rows"]

ID_KEY_COLUMNS = ("run_id", "job_id")
"""Key columns whose values become path components in generations.csv."""
_SHOWN = 5


def frame_rows(df: pd.DataFrame, key_cols: Sequence[str], *, file: str, ids: bool) -> list[dict[str, str]]:
    """One {column: text} per row of `df`, a missing value (None, NaN, NA, NaT) left out; the last row of a key wins.

    Raises InputError, naming the column and the offending values, for a column name that is empty,
    starts with U+FEFF or appears twice, a key column that is missing, float-typed or has an empty
    cell, and (`ids`) a run_id or job_id key that is not a valid id.
    """
    names = [str(c) for c in df.columns]
    _check_names(names, file)
    keys = list(key_cols)
    if not keys:
        raise InputError(f"{file}: no key column given: an upsert needs at least one. Nothing was written.")
    missing = [k for k in keys if k not in names]
    if missing:
        raise InputError(
            f"{file}: key column(s) {', '.join(missing)} not in the frame (its columns: {', '.join(names)})"
        )
    texts = {name: _column_text(df.iloc[:, at]) for at, name in enumerate(names)}
    for name in keys:
        _check_key(name, df.iloc[:, names.index(name)], texts[name], file, ids and name in ID_KEY_COLUMNS)
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    for at in range(len(df)):
        cells = {name: text for name, column in texts.items() if (text := column[at]) is not None}
        rows.setdefault(tuple(cells[k] for k in keys), {}).update(cells)
    return list(rows.values())


def _check_names(names: Sequence[str], file: str) -> None:
    bad = [repr(n) for n in names if not n or n.startswith("\ufeff")]
    doubled = sorted(n for n, count in Counter(names).items() if count > 1)
    if bad or doubled:
        found = [
            *(f"column name {b} (empty, or starting with U+FEFF)" for b in bad),
            *(f"column {d!r} twice" for d in doubled),
        ]
        raise InputError(f"{file}: the frame's header is not usable: {'; '.join(found)}. Nothing was written.")


def _shown(values: Sequence[object]) -> str:
    more = f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    return ", ".join(repr(v) for v in values[:_SHOWN]) + more


def _check_key(key: str, series: pd.Series, texts: Sequence[str | None], file: str, is_id: bool) -> None:
    floats = [v for v in series.tolist() if isinstance(v, float | np.floating) and not _is_missing(v)]
    if pd.api.types.is_float_dtype(series.dtype) or floats:
        raise InputError(
            f"{file}: key column {key} holds floats ({_shown(floats or series.tolist())}): the frame was read with"
            " dtype inference (197260739297 becomes 197260739297.0); read it with dtype=str. Nothing was written."
        )
    empty = [at for at, text in enumerate(texts) if not text]
    if empty:
        raise InputError(f"{file}: key column {key} is empty in frame rows {_shown(empty)}. Nothing was written.")
    if is_id:
        bad = [text for text in texts if text is not None and ID_PATTERN.fullmatch(text) is None]
        if bad:
            raise InputError(
                f"{file}: key column {key} holds values that are not valid ids ({_shown(bad)}): expected 1 to 128"
                " letters, digits, '.', '_' or '-', starting with a letter or digit. Nothing was written."
            )


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _column_text(series: pd.Series) -> list[str | None]:
    """Each value's text (None: missing); integral floats lose their `.0` when every given value is integral."""
    width = _float_width(series.dtype)
    values = series.to_numpy(dtype=object) if width is None else series.to_numpy(dtype=f"float{width}", na_value=np.nan)
    texts = [_text(value, width) for value in values]
    given = [value for value in values if not _is_missing(value)]
    if given and all(_is_integral(value) for value in given):
        texts = [t[:-2] if t is not None and t.endswith(".0") else t for t in texts]
    return texts


def _float_width(dtype: Any) -> int | None:
    """16, 32 or 64 for a float column (numpy, pandas' nullable or arrow-backed), else None."""
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)
    try:
        kind = np.dtype(numpy_dtype)
    except TypeError:
        return None
    return kind.itemsize * 8 if kind.kind == "f" and kind.itemsize in (2, 4, 8) else None


def _is_integral(value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | np.integer):
        return True
    return isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer()


def _text(value: object, width: int | None) -> str | None:
    """The shortest text that reads back as the same value in its own type; None for a missing value."""
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        bits = width or (value.dtype.itemsize * 8 if isinstance(value, np.floating) else 64)
        # numpy prints the shortest text that reads back as the same value of its own width
        return repr(float(value)) if bits == 64 else str({16: np.float16, 32: np.float32}[bits](value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    return str(value)
