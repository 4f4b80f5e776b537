"""The table lock: filelock on `<table>.lock`, as the reference worker takes it, and flock on the table's folder."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import filelock

if sys.platform != "win32":
    import fcntl

from archi3d.errors import InputError, LockTimeoutError, WriteFailedError

__all__ = ["DEFAULT_LOCK_TIMEOUT", "table_lock"]

DEFAULT_LOCK_TIMEOUT = 30.0
_POLL = 0.01
_MAX_POLL = 0.1
# A folder lock the file system does not offer: the lock file alone then guards the table.
_NO_FOLDER_LOCK = frozenset({errno.EBADF, errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS})


@contextlib.contextmanager
def table_lock(path: str | os.PathLike[str], timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the lock of the table at `path`, waiting at most `timeout` seconds in all.

    filelock's FileLock on `path.with_suffix('.lock')` excludes the reference archi3D worker, which
    takes that same lock. A clean-up script or a sync client may delete or replace that file while it
    is held, and the next taker would then lock a new file: archi3d writers also hold flock on the
    table's folder, which nothing but the holder can release. The lock file is never deleted.
    """
    table = Path(path)
    lock_path = table.with_suffix(".lock")
    deadline = time.monotonic() + timeout
    with _folder_lock(table.parent, lock_path, deadline, timeout):
        lock = filelock.FileLock(str(lock_path), timeout=max(deadline - time.monotonic(), 0))
        try:
            lock.acquire()
        except filelock.Timeout:
            raise _timed_out(lock_path, timeout) from None
        except (IsADirectoryError, NotADirectoryError) as error:
            raise InputError(
                f"{lock_path}: cannot be used as a lock ({error.strerror}). Nothing was written."
            ) from error
        except OSError as error:
            raise WriteFailedError.of(lock_path, error, "Nothing was written.") from error
        try:
            yield
        finally:
            lock.release()


def _timed_out(lock_path: Path, timeout: float) -> LockTimeoutError:
    return LockTimeoutError(
        f"{lock_path}: lock held by another process for more than {timeout:g} s. Nothing was written."
    )


@contextlib.contextmanager
def _folder_lock(folder: Path, lock_path: Path, deadline: float, timeout: float) -> Iterator[None]:
    if sys.platform == "win32":  # no flock: the lock file alone
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as error:
        raise InputError(
            f"{folder}: cannot be opened to lock the table ({error.strerror}). Nothing was written."
        ) from error
    try:
        delay = _POLL
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _timed_out(lock_path, timeout) from None
                time.sleep(delay)
                delay = min(delay * 2, _MAX_POLL)
            except OSError as error:
                if error.errno in _NO_FOLDER_LOCK:
                    break
                raise WriteFailedError.of(folder, error, "Nothing was written.") from error
        yield  # closing the descriptor releases the flock
    finally:
        os.close(fd)
