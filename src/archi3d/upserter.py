"""table_upserter: rows of a long metric phase written in batches, each one atomic upsert."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import pandas as pd

from archi3d.frame import frame_rows
from archi3d.lock import DEFAULT_LOCK_TIMEOUT
from archi3d.upsert import upsert_rows

__all__ = ["TableUpserter", "table_upserter"]


class TableUpserter:
    """Collects rows for one table and upserts them in batches: every `every` rows, and `seconds` after
    the oldest row waiting was added (from a background thread), and whatever is left on `close`.

    A crash loses at most the rows not yet written, never the table. A batch that fails to be written
    stays queued: its error is raised by the call that wrote it, or for the timer by the next `add`
    (`flush` and `close` try again, and raise only their own error).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        key_cols: Sequence[str],
        *,
        every: int = 1000,
        seconds: float | None = 60.0,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        if every < 1 or (seconds is not None and seconds <= 0):
            raise ValueError(f"every must be at least 1 and seconds positive, found every={every}, seconds={seconds}")
        self.path = Path(path)
        self.key_cols = tuple(key_cols)
        self.every = every
        self.seconds = seconds
        self.lock_timeout = lock_timeout
        self.inserted = 0
        """Rows inserted by the batches written so far."""
        self.updated = 0
        """Rows updated by the batches written so far."""
        self.rows_written = 0
        """Rows of the batches written so far (as added; several rows of one key count each)."""
        self._pending: list[dict[str, str]] = []
        self._oldest = 0.0
        self._error: BaseException | None = None
        self._closed = False
        self._changed = threading.Condition()  # guards the fields above
        self._writing = threading.Lock()  # one batch at a time, in the order they were taken
        self._timer = None if seconds is None else threading.Thread(target=self._write_when_due, daemon=True)
        if self._timer is not None:
            self._timer.start()

    def add(self, row: Mapping[str, object] | pd.DataFrame) -> None:
        """Queue one row (a mapping of column to value) or every row of a DataFrame; writes a full batch.

        Values become text as in update_csv_atomic; a missing value leaves the table's cell as it is.
        A row with a bad key raises InputError here, and is not queued. An error of the timer's last
        write is raised here once the rows are queued.
        """
        frame = row if isinstance(row, pd.DataFrame) else pd.DataFrame([dict(row)])
        rows = frame_rows(frame, self.key_cols, file=str(self.path), ids=self.path.name == "generations.csv")
        with self._changed:
            if self._closed:
                raise ValueError(f"{self.path}: the upserter is closed")
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.extend(rows)
            self._changed.notify_all()
            self._raise_timer_error()  # the rows are queued all the same
            full = len(self._pending) >= self.every
        if full:
            self.flush()

    def flush(self) -> None:
        """Write every queued row now (one atomic upsert)."""
        with self._writing:
            with self._changed:
                self._error = None  # this write retries what the timer failed to write
                self._changed.notify_all()
                batch, self._pending = self._pending, []
            if batch:
                self._write(batch)

    def close(self) -> None:
        """Write what is queued and stop the timer; the upserter takes no more rows."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._timer is not None:
            self._timer.join()
        self.flush()

    def _write(self, batch: list[dict[str, str]]) -> None:
        try:
            inserted, updated = upsert_rows(self.path, batch, self.key_cols, lock_timeout=self.lock_timeout)
        except BaseException:
            with self._changed:
                self._pending[:0] = batch  # not written: it goes first in the next batch
                self._oldest = time.monotonic()
            raise
        with self._changed:
            self.inserted += inserted
            self.updated += updated
            self.rows_written += len(batch)

    def _raise_timer_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _write_when_due(self) -> None:
        assert self.seconds is not None
        while True:
            with self._changed:
                while not self._closed and (not self._pending or self._error is not None or self._due_in() > 0):
                    self._changed.wait(self._due_in() if self._pending and self._error is None else None)
                if self._closed:
                    return
            try:
                self.flush()
            except BaseException as error:  # kept for the caller's next call
                with self._changed:
                    self._error = error

    def _due_in(self) -> float:
        assert self.seconds is not None
        return self._oldest + self.seconds - time.monotonic()

    def __enter__(self) -> TableUpserter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def table_upserter(
    path: str | os.PathLike[str],
    key_cols: Sequence[str],
    *,
    every: int = 1000,
    seconds: float | None = 60.0,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> TableUpserter:
    """A TableUpserter, to use in a `with` block: what is left is written when the block ends (also when it raises)."""
    return TableUpserter(path, key_cols, every=every, seconds=seconds, lock_timeout=lock_timeout)
