"""The one exception hierarchy of archi3d; each error knows its CLI exit status."""

from __future__ import annotations

import os
from collections.abc import Sequence

import attrs

__all__ = [
    "Archi3dError",
    "InputError",
    "InvalidIdError",
    "LockTimeoutError",
    "ObjectChangedError",
    "Problem",
    "ReplaceRefusedError",
    "StrictConflictError",
    "TableError",
    "UnknownRunError",
    "WriteFailedError",
    "WriteRefusedError",
]


@attrs.frozen
class Problem:
    """One thing wrong with one cell (or line) of one file."""

    file: str
    line: int | None
    column: str | None
    message: str
    field: int | None = None
    """The column's place in the header, from 1, when known."""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


class Archi3dError(Exception):
    """Base of every error archi3d raises on purpose."""

    exit_code = 2


class InputError(Archi3dError, ValueError):
    """Bad input: an id, a file, a table or a frame that cannot be used as it is. Nothing was written."""


class InvalidIdError(InputError):
    """A run_id or job_id that must not become a path component."""


class UnknownRunError(InputError):
    """A run with no rows, no manifest and no folder, or rows without a folder."""


class TableError(InputError):
    """A CSV file that fails to parse or fails its schema; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "\n".join(str(p) for p in self.problems[:50])
        more = len(self.problems) - 50
        super().__init__(shown + (f"\n... and {more} more problems" if more > 0 else ""))

    @classmethod
    def single(cls, file: str, line: int | None, column: str | None, message: str) -> TableError:
        return cls([Problem(file, line, column, message)])


class ObjectChangedError(InputError):
    """A row's object is missing, or not the file whose SHA-256 the row records."""


class StrictConflictError(Archi3dError):
    """--strict found conflicts; nothing was written. Carries the summary (a consolidate.Summary)."""

    exit_code = 1

    def __init__(self, message: str, summary: object = None) -> None:
        super().__init__(message)
        self.summary = summary


class WriteRefusedError(Archi3dError):
    """A write that did not happen (lock, replace, space, permission); what was on disk is whole."""

    exit_code = 3


class LockTimeoutError(WriteRefusedError, TimeoutError):
    """Another process held the table lock for longer than the timeout."""


class ReplaceRefusedError(WriteRefusedError, TimeoutError):
    """Another program kept the table from being replaced in time (e.g. a sync client)."""


class WriteFailedError(WriteRefusedError, OSError):
    """A file could not be written (no space, no permission, read-only); the cause is the OSError."""

    def __init__(self, message: str, cause: OSError) -> None:
        super().__init__(message)
        self.errno, self.strerror, self.filename = cause.errno, cause.strerror, cause.filename
        self.__cause__ = cause

    def __str__(self) -> str:
        return str(self.args[0])

    @classmethod
    def of(cls, path: str | os.PathLike[str], cause: OSError, outcome: str) -> WriteFailedError:
        """`path: <reason>. <outcome>`, e.g. outcome "The table is unchanged."."""
        return cls(f"{os.fspath(path)}: {cause.strerror or cause}. {outcome}", cause)
