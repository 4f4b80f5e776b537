"""Crash-safe file writes: atomic replace, and the append-only event logs."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import stat
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

if sys.platform != "win32":
    import fcntl

from archi3d.errors import ReplaceRefusedError, WriteFailedError
from archi3d.formats import UTC

__all__ = [
    "DEFAULT_REPLACE_TIMEOUT",
    "append_log_record",
    "format_log_line",
    "write_bytes_atomic",
    "write_text_atomic",
]

DEFAULT_REPLACE_TIMEOUT = 10.0
_TEMP_TAG = ".archi3d-tmp-"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}{_TEMP_TAG}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove_stale_temps(path: Path) -> None:
    """Temp files of killed writers are ours by name and carry their pid; remove the dead ones'."""
    prefix = _temp_prefix(path)
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            pid_text = entry.name[len(prefix) :].split("-", 1)[0]
            if pid_text.isdigit() and not _pid_alive(int(pid_text)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _fsync_dir(folder: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


Data = bytes | Iterable[bytes | memoryview]


def write_bytes_atomic(
    path: str | os.PathLike[str], data: Data, *, replace_timeout: float = DEFAULT_REPLACE_TIMEOUT
) -> None:
    """Replace the file at `path` with `data` (bytes, or pieces written one after the other): a crash
    at any instant leaves the old file or the new one, whole.

    Missing parent folders are created. A symbolic link stays one: the file it points to is replaced
    (the temp file goes beside that file). A replace refused by another program (PermissionError) is
    retried until `replace_timeout`, then ReplaceRefusedError is raised; any other failure (no space,
    no permission) raises WriteFailedError, naming `path`. Either way the file is left as it was.
    """
    target = Path(os.path.realpath(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(target)
        _replace_with(target, data, replace_timeout, os.fspath(path))
    except (ReplaceRefusedError, WriteFailedError):
        raise
    except OSError as error:
        raise WriteFailedError.of(path, error, "The file is unchanged.") from error


def _replace_with(target: Path, data: Data, replace_timeout: float, shown: str) -> None:
    temp = target.parent / f"{_temp_prefix(target)}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(temp, "xb") as handle:
            handle.writelines([data] if isinstance(data, bytes) else data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):  # the new file keeps the old one's permissions
            os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
        deadline = time.monotonic() + replace_timeout
        delay = 0.05
        while True:
            try:
                os.replace(temp, target)
                break
            except PermissionError as error:
                if time.monotonic() >= deadline:
                    raise ReplaceRefusedError(
                        f"{shown}: could not be replaced for {replace_timeout:g} s ({error.strerror});"
                        " another program holds it. The file is unchanged."
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(target.parent)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """write_bytes_atomic for text, written exactly as given (no newline translation)."""
    write_bytes_atomic(path, text.encode(encoding))


def _utc_stamp(moment: dt.datetime | None) -> str:
    return (moment or dt.datetime.now(UTC)).astimezone(UTC).isoformat()


def format_log_line(record: Mapping[str, Any], moment: dt.datetime | None = None) -> str:
    """'<ISO8601 UTC> <single-line JSON>\\n'."""
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"{_utc_stamp(moment)} {body}\n"


def append_log_record(
    path: str | os.PathLike[str], record: Mapping[str, Any], moment: dt.datetime | None = None
) -> None:
    """Append one line for `record`; concurrent writers never interleave.

    The log itself is locked (flock on POSIX) and written with one O_APPEND write, so no lock file
    is created beside it. Missing parent folders are created. A log that cannot be appended to raises
    WriteFailedError, naming it.
    """
    line = format_log_line(record, moment).encode("utf-8")
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_EX)
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
        finally:
            os.close(fd)
    except OSError as error:
        raise WriteFailedError.of(path, error, "The record was not appended.") from error
