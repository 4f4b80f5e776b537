"""The domain: job status, manifest jobs, disk evidence and generation rows (immutable attrs classes)."""

from __future__ import annotations

import datetime as dt
import enum
import math
import operator
import re
from collections.abc import Mapping
from itertools import compress, repeat
from types import MappingProxyType
from typing import Any

import attrs
import cattrs

from archi3d.columns import GENERATIONS_COLUMNS, MANIFEST_COLUMNS

__all__ = [
    "Evidence",
    "GenerationRow",
    "Job",
    "LogEvent",
    "Status",
    "format_number",
    "format_timestamp",
    "parse_number",
    "parse_timestamp",
    "text_converter",
]

UTC = dt.timezone.utc


class Status(enum.Enum):
    """Job status; precedence completed > failed > running > enqueued."""

    ENQUEUED = "enqueued"
    RUNNING = "running"
    FAILED = "failed"
    COMPLETED = "completed"

    @property
    def precedence(self) -> int:
        return _PRECEDENCE[self]

    def combine(self, other: Status) -> Status:
        """The higher of the two."""
        return self if self.precedence >= other.precedence else other

    def __str__(self) -> str:
        return self.value


_PRECEDENCE = {Status.ENQUEUED: 0, Status.RUNNING: 1, Status.FAILED: 2, Status.COMPLETED: 3}

_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)


def parse_timestamp(text: str) -> dt.datetime | None:
    """ISO 8601 text to an aware UTC datetime; no offset means UTC; empty means None."""
    if not text:
        return None
    if _ISO.fullmatch(text) is None:
        raise ValueError(f"expected an ISO 8601 timestamp, found {text!r}")
    try:
        moment = dt.datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {text!r}") from None


def format_timestamp(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_number(text: str) -> float | None:
    if not text:
        return None
    if _NUMBER.fullmatch(text) is None:
        raise ValueError(f"expected a number, found {text!r}")
    return float(text)


def format_number(value: float | None) -> str:
    if value is None:
        return ""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _read_only(cells: Mapping[str, str]) -> Mapping[str, str]:
    return cells if isinstance(cells, MappingProxyType) else MappingProxyType(dict(cells))


# Classes built per job are frozen but dict-backed: a frozen slotted class sets each field through
# object.__setattr__ (~850 instructions; a dict-backed one writes its instance dict, ~100).
@attrs.frozen(slots=False)
class GenerationRow:
    """One row of generations.csv: the known columns typed, every other column kept as text.

    `source` holds the cells the row was read from: a value equal to its source keeps its text.
    """

    run_id: str
    job_id: str
    status: Status = Status.ENQUEUED
    product_id: str = ""
    variant: str = ""
    manufacturer: str = ""
    product_name: str = ""
    category_l1: str = ""
    category_l2: str = ""
    category_l3: str = ""
    description: str = ""
    source_n_images: float | None = None
    source_image_1_path: str = ""
    source_image_2_path: str = ""
    source_image_3_path: str = ""
    source_image_4_path: str = ""
    source_image_5_path: str = ""
    source_image_6_path: str = ""
    gt_object_path: str = ""
    algo: str = ""
    algo_version: str = ""
    used_n_images: float | None = None
    used_image_1_path: str = ""
    used_image_2_path: str = ""
    used_image_3_path: str = ""
    used_image_4_path: str = ""
    used_image_5_path: str = ""
    used_image_6_path: str = ""
    image_set_hash: str = ""
    created_at: dt.datetime | None = None
    notes: str = ""
    generation_start: dt.datetime | None = None
    generation_end: dt.datetime | None = None
    generation_duration_s: float | None = None
    unit_price_usd: float | None = None
    price_source: str = ""
    gen_object_path: str = ""
    preview_1_path: str = ""
    preview_2_path: str = ""
    preview_3_path: str = ""
    error_msg: str = ""
    worker_host: str = ""
    worker_user: str = ""
    worker_gpu: str = ""
    worker_env: str = ""
    worker_commit: str = ""
    extra: Mapping[str, str] = attrs.field(factory=dict, converter=_read_only)
    """The cells of columns that are not known ones, read-only."""
    source: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)
    parsed: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    """The typed values of `source`: a typed value still equal to its parsed one keeps its text."""
    line: int | None = attrs.field(default=None, eq=False)

    @classmethod
    def from_cells(cls, cells: Mapping[str, str], line: int | None = None) -> GenerationRow:
        """Structure a row from its text cells; raises ValueError for a cell of the wrong shape.

        Hot path (every row of a run): the typed cells go through the converter's hooks directly.
        """
        values: list[Any] = list(map(cells.get, _COLUMN_FIELDS, repeat("")))
        parsed: dict[str, Any] = {}
        for at, name, hook, kind in _TYPED_HOOKS:
            text = values[at]
            values[at] = parsed[name] = hook(text, kind) if text or name == "status" else None
        extra = {} if _KNOWN.issuperset(cells) else {k: cells[k] for k in cells.keys() - _KNOWN}
        values += (extra, cells, parsed, line)
        return cls(*values)

    def evolve(self, **changes: Any) -> GenerationRow:
        """attrs.evolve(self, **changes), with positional arguments (51 keywords cost twice as much)."""
        values = list(_field_values(self))
        for name, value in changes.items():
            if name not in _FIELD_AT:
                raise TypeError(f"GenerationRow has no field {name!r}")
            values[_FIELD_AT[name]] = value
        return GenerationRow(*values)

    @property
    def key(self) -> tuple[str, str]:
        return (self.run_id, self.job_id)

    def cell(self, column: str) -> str:
        """The text this row writes in `column`."""
        if column not in _KNOWN:
            return self.extra.get(column, "")
        value = getattr(self, column)
        return self._typed_text(column, value) if column in _TYPED else str(value)

    def _typed_text(self, column: str, value: Any) -> str:
        """A typed value equal to the one parsed from its text keeps that text; another is formatted."""
        return self.source.get(column, "") if value == self.parsed.get(column) else _format(column, value)

    def changed_cells(self, before: GenerationRow) -> dict[str, str]:
        """The text of each known column whose value is not `before`'s (self evolved from `before`)."""
        differing = compress(GENERATIONS_COLUMNS, map(operator.ne, _known_values(self), _known_values(before)))
        return {column: self.cell(column) for column in differing}

    def to_cells(self) -> dict[str, str]:
        """Every column this row has a value for: the known ones, then the extra ones."""
        cells = dict(zip(GENERATIONS_COLUMNS, _known_values(self)))
        cells.update(zip(_TYPED, map(self.source.get, _TYPED, repeat(""))))  # as _typed_text, column by column
        for column in compress(_TYPED, map(operator.ne, _typed_values(self), map(self.parsed.get, _TYPED))):
            cells[column] = _format(column, getattr(self, column))
        cells.update(self.extra)
        return cells


_KNOWN = frozenset(GENERATIONS_COLUMNS)
attrs.resolve_types(GenerationRow)
_TYPED: dict[str, Any] = {
    a.name: a.type for a in attrs.fields(GenerationRow) if a.name in _KNOWN and a.type is not str
}
_known_values = operator.attrgetter(*GENERATIONS_COLUMNS)
_typed_values = operator.attrgetter(*_TYPED)
_FIELDS = tuple(a.name for a in attrs.fields(GenerationRow))
_FIELD_AT = {name: at for at, name in enumerate(_FIELDS)}
_field_values = operator.attrgetter(*_FIELDS)
_COLUMN_FIELDS = _FIELDS[: len(GENERATIONS_COLUMNS)]
"""The known columns, in the order of GenerationRow's first fields."""
assert set(_COLUMN_FIELDS) == _KNOWN


def _format(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Status):
        return value.value
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, float):
        return f"{value:.3f}" if column == "generation_duration_s" else format_number(value)
    return str(value)


def _build_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_structure_hook(Status, lambda text, _: Status(text))
    converter.register_structure_hook(dt.datetime | None, lambda text, _: parse_timestamp(text))
    converter.register_structure_hook(float | None, lambda text, _: parse_number(text))
    converter.register_unstructure_hook(Status, lambda status: status.value)
    converter.register_unstructure_hook(dt.datetime, format_timestamp)
    return converter


text_converter = _build_converter()
"""cattrs converter between text cells and typed values (rows and jobs)."""

_TYPED_HOOKS = tuple(
    (_FIELD_AT[name], name, text_converter.get_structure_hook(kind), kind) for name, kind in _TYPED.items()
)


@attrs.frozen(slots=False)
class Job:
    """One job of a run's manifest."""

    job_id: str
    product_id: str = ""
    variant: str = ""
    algo: str = ""
    used_n_images: str = ""
    used_image_1_path: str = ""
    used_image_2_path: str = ""
    used_image_3_path: str = ""
    used_image_4_path: str = ""
    used_image_5_path: str = ""
    used_image_6_path: str = ""
    image_set_hash: str = ""
    gt_object_path: str = ""
    product_name: str = ""
    manufacturer: str = ""

    @classmethod
    def from_cells(cls, cells: Mapping[str, str]) -> Job:
        return text_converter.structure({k: v for k, v in cells.items() if k in _MANIFEST}, cls)

    def row_cells(self) -> dict[str, str]:
        """The generations.csv cells a manifest insert takes from this job."""
        return {name: getattr(self, name) for name in MANIFEST_COLUMNS}


_MANIFEST = frozenset(MANIFEST_COLUMNS)


@attrs.frozen(slots=False)
class LogEvent:
    """A worker.log job_completed/job_failed event: the line's time is the job's end."""

    status: Status
    end: dt.datetime
    duration_s: float | None = None


@attrs.frozen(slots=False)
class Evidence:
    """What the disk says about one job. Times are UTC; paths are workspace-relative POSIX."""

    inprogress_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    has_inprogress: bool = False
    has_completed: bool = False
    has_failed: bool = False
    object_path: str | None = None
    object_size: int = 0
    object_mtime: dt.datetime | None = None
    object_candidates: tuple[str, ...] = ()
    previews: tuple[str, str, str] = ("", "", "")
    invalid_previews: tuple[str, ...] = ()
    earliest_output_at: dt.datetime | None = None
    existing_paths: frozenset[str] = frozenset()
    error_text: str | None = None
    metadata_mismatch: str | None = None
    log_event: LogEvent | None = None

    @property
    def has_object(self) -> bool:
        return self.object_path is not None and self.object_size > 0

    @property
    def marker_times(self) -> tuple[dt.datetime, ...]:
        return tuple(t for t in (self.inprogress_at, self.completed_at, self.failed_at) if t is not None)
