"""The one exception hierarchy of archi3d; each error knows its CLI exit status."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

__all__ = [
    "Archi3dError",
    "InputError",
    "InvalidIdError",
    "LockTimeoutError",
    "Problem",
    "ReplaceRefusedError",
    "StrictConflictError",
    "TableError",
    "UnknownRunError",
    "WriteRefusedError",
]


@attrs.frozen
class Problem:
    """One thing wrong with one cell (or line) of one file."""

    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


class Archi3dError(Exception):
    """Base of every error archi3d raises on purpose."""

    exit_code = 2


class InputError(Archi3dError):
    """Bad input: an id, a file or a table that cannot be used as it is."""


class InvalidIdError(InputError, ValueError):
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


class StrictConflictError(Archi3dError):
    """--strict found conflicts; nothing was written. Carries the summary (a consolidate.Summary)."""

    exit_code = 1

    def __init__(self, message: str, summary: object = None) -> None:
        super().__init__(message)
        self.summary = summary


class WriteRefusedError(Archi3dError):
    """The table could not be locked or replaced in time; the file is untouched."""

    exit_code = 3


class LockTimeoutError(WriteRefusedError):
    """Another process held the table lock for longer than the timeout."""


class ReplaceRefusedError(WriteRefusedError):
    """Another program kept the table from being replaced (e.g. a sync client)."""
