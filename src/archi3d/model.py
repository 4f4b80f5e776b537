"""The domain: job status, manifest jobs, disk evidence and generation rows (immutable attrs classes)."""

from __future__ import annotations

import datetime as dt
import enum
import math
import operator
from collections.abc import Mapping
from itertools import compress, repeat
from types import MappingProxyType
from typing import Any

import attrs
import cattrs

from archi3d.columns import GENERATIONS_COLUMNS, MANIFEST_COLUMNS
from archi3d.formats import COUNT_PATTERN, NUMBER_PATTERN, TIMESTAMP_PATTERN, UTC

__all__ = [
    "Evidence",
    "GenerationRow",
    "Job",
    "LogEvent",
    "Status",
    "TimeEvidence",
    "format_number",
    "format_timestamp",
    "parse_count",
    "parse_number",
    "parse_timestamp",
    "text_converter",
]


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


def parse_timestamp(text: str) -> dt.datetime | None:
    """ISO 8601 text to an aware UTC datetime; no offset means UTC; empty means None."""
    if not text:
        return None
    if TIMESTAMP_PATTERN.fullmatch(text) is None:
        raise ValueError(f"expected an ISO 8601 timestamp, found {text!r}")
    try:
        moment = dt.datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {text!r}") from None


def format_timestamp(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def parse_number(text: str) -> float | None:
    if not text:
        return None
    if NUMBER_PATTERN.fullmatch(text) is None:
        raise ValueError(f"expected a number, found {text!r}")
    return float(text)


def parse_count(text: str) -> int | None:
    """A non-negative integer (a size in bytes); empty means None."""
    if not text:
        return None
    if COUNT_PATTERN.fullmatch(text) is None:
        raise ValueError(f"expected a count of bytes, found {text!r}")
    return int(text)


def format_number(value: float | None) -> str:
    if value is None:
        return ""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _read_only(cells: Mapping[str, str]) -> Mapping[str, str]:
    return cells if isinstance(cells, MappingProxyType) else MappingProxyType(dict(cells))


# Records built for every job are frozen but dict-backed (slots=False): a frozen slotted class sets
# each field through object.__setattr__, which made building them a tenth of a first run's time.
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
    gen_object_sha256: str = ""
    """The SHA-256 of the object when consolidate last recorded it (completed jobs)."""
    gen_object_bytes: int | None = None
    """Its size then, in bytes."""
    extra: Mapping[str, str] = attrs.field(factory=dict, converter=_read_only)
    """The cells of columns that are not known ones, read-only."""
    source: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)
    parsed: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    """The typed values of `source`: a typed value still equal to its parsed one keeps its text."""
    line: int | None = attrs.field(default=None, eq=False)

    @classmethod
    def from_cells(cls, cells: Mapping[str, str], line: int | None = None) -> GenerationRow:
        """Structure a row from its text cells; raises ValueError for a cell of the wrong shape."""
        values: dict[str, Any] = {name: cells.get(name, "") for name in GENERATIONS_COLUMNS}
        parsed = {
            name: hook(values[name], kind) if values[name] or name == "status" else None
            for name, hook, kind in _TYPED_HOOKS
        }
        values.update(parsed)
        extra = {k: v for k, v in cells.items() if k not in _KNOWN}
        return cls(**values, extra=extra, source=cells, parsed=parsed, line=line)

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
_TYPED: dict[str, Any] = {a.name: a.type for a in attrs.fields(GenerationRow) if a.name in _KNOWN and a.type is not str}
_known_values = operator.attrgetter(*GENERATIONS_COLUMNS)
_typed_values = operator.attrgetter(*_TYPED)


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
    converter.register_structure_hook(int | None, lambda text, _: parse_count(text))
    converter.register_unstructure_hook(Status, lambda status: status.value)
    converter.register_unstructure_hook(dt.datetime, format_timestamp)
    return converter


text_converter = _build_converter()
"""cattrs converter between text cells and typed values (rows and jobs)."""

_TYPED_HOOKS = tuple((name, text_converter.get_structure_hook(kind), kind) for name, kind in _TYPED.items())


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
class TimeEvidence:
    """What the disk says about when a job ran; only a row lacking its start or end needs it."""

    log_event: LogEvent | None = None
    """The job's last worker.log event, if any."""
    object_mtime: dt.datetime | None = None
    earliest_output_at: dt.datetime | None = None
    """The oldest file time in the job's outputs folder."""


@attrs.frozen(slots=False)
class Evidence:
    """What the disk says about one job. Times are UTC; paths are workspace-relative POSIX."""

    markers: frozenset[str] = frozenset()
    """The kinds of the job's state markers: inprogress, completed, failed."""
    inprogress_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    object_path: str | None = None
    object_size: int = 0
    object_candidates: tuple[str, ...] = ()
    """Every *.glb the object was chosen from, when there were several."""
    previews: tuple[str, str, str] = ("", "", "")
    """Valid previews found for the slots whose recorded preview is not there."""
    invalid_previews: tuple[str, ...] = ()
    existing_paths: frozenset[str] = frozenset()
    """Which of the paths the row records are files that exist."""
    error_text: str | None = None
    metadata_mismatch: str | None = None
    object_sha256: str | None = None
    """The object's SHA-256; None: not hashed, because the row's recorded hash and size describe it."""
    times: TimeEvidence | None = None
    """None: not gathered, because the row holds its start and end."""

    @property
    def has_object(self) -> bool:
        return self.object_path is not None and self.object_size > 0

    @property
    def marker_times(self) -> tuple[dt.datetime, ...]:
        return tuple(t for t in (self.inprogress_at, self.completed_at, self.failed_at) if t is not None)
