"""Shared helpers of the reliability tests (bad inputs, refused writes, crash and concurrency soaks).

The CLI runs either in-process (typer's CliRunner) or as a real subprocess. The subprocess form can
run through WRAPPER, a small `python -c` program that patches the operating system calls the way a
hostile environment would behave (a folder nobody may read, a table a sync client keeps open) and
then calls `archi3d.cli.main()`. Nothing here changes the package.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ARCHI3D = Path(sys.executable).with_name("archi3d")
TEMP_TAG = ".archi3d-tmp-"

DENY_ENV = "ARCHI3D_TEST_DENY"
"""os.pathsep-separated folders the wrapper makes behave like `chmod 000` folders."""
DENY_FILES_ENV = "ARCHI3D_TEST_DENY_FILES"
"""os.pathsep-separated files the wrapper makes behave like `chmod 000` files (stat works, open fails)."""
REFUSE_ENV = "ARCHI3D_TEST_REFUSE_REPLACE"
"""A file the wrapper's os.replace refuses to replace (PermissionError), as a sync client would."""
REFUSE_COUNT_ENV = "ARCHI3D_TEST_REFUSE_COUNT"
"""How many replaces of that file are refused (default: all of them)."""
HANG_REPLACE_ENV = "ARCHI3D_TEST_HANG_REPLACE"
"""A file whose replace never comes: the wrapper prints HANGING on stderr and sleeps (to be killed)."""

WRAPPER = r"""
import atexit
import builtins
import errno
import io
import os
import sys

deny = [os.path.abspath(p) for p in os.environ.get("ARCHI3D_TEST_DENY", "").split(os.pathsep) if p]
deny_files = [os.path.abspath(p) for p in os.environ.get("ARCHI3D_TEST_DENY_FILES", "").split(os.pathsep) if p]


def _denied(path):
    # A folder with mode 000: it can be stat'ed itself (its parent is readable), but it cannot be
    # listed, and nothing inside it can be stat'ed or opened.
    try:
        real = os.path.abspath(os.fsdecode(path))  # no system call: realpath would lstat (patched) again
    except TypeError:
        return None
    for folder in deny:
        if real.startswith(folder + os.sep):
            return real
    return None


def _denied_file(path):
    try:
        real = os.path.abspath(os.fsdecode(path))
    except TypeError:
        return None
    return real if real in deny_files else _denied(path)


def _denied_folder(path):
    try:
        real = os.path.abspath(os.fsdecode(path))
    except TypeError:
        return None
    return real if real in deny else _denied(path)


def _refuse(path):
    raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))


if deny or deny_files:
    real_scandir, real_listdir = os.scandir, os.listdir
    real_stat, real_lstat = os.stat, os.lstat
    real_open, real_os_open = builtins.open, os.open

    def scandir(path=".", *args, **kwargs):
        if _denied_folder(path):
            _refuse(path)
        return real_scandir(path, *args, **kwargs)

    def listdir(path=".", *args, **kwargs):
        if _denied_folder(path):
            _refuse(path)
        return real_listdir(path, *args, **kwargs)

    def stat(path, *args, **kwargs):
        if not isinstance(path, int) and _denied(path):
            _refuse(path)
        return real_stat(path, *args, **kwargs)

    def lstat(path, *args, **kwargs):
        if _denied(path):
            _refuse(path)
        return real_lstat(path, *args, **kwargs)

    def open_(file, *args, **kwargs):
        if not isinstance(file, int) and _denied_file(file):
            _refuse(file)
        return real_open(file, *args, **kwargs)

    def os_open(path, *args, **kwargs):
        if _denied_file(path):
            _refuse(path)
        return real_os_open(path, *args, **kwargs)

    os.scandir, os.listdir, os.stat, os.lstat, os.open = scandir, listdir, stat, lstat, os_open
    builtins.open = io.open = open_

refused_target = os.environ.get("ARCHI3D_TEST_REFUSE_REPLACE")
if refused_target:
    refused_target = os.path.realpath(refused_target)
    remaining = [int(os.environ.get("ARCHI3D_TEST_REFUSE_COUNT", "-1"))]
    refusals = [0]
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.realpath(os.fspath(dst)) == refused_target and remaining[0] != 0:
            remaining[0] -= 1
            refusals[0] += 1
            raise PermissionError(errno.EACCES, "Permission denied (held by a sync client)", os.fspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    atexit.register(lambda: sys.stderr.write(f"\nREFUSED_REPLACES {refusals[0]}\n"))

hang_target = os.environ.get("ARCHI3D_TEST_HANG_REPLACE")
if hang_target:
    import time

    hang_target = os.path.realpath(hang_target)
    replace_before_hang = os.replace

    def hanging_replace(src, dst, *args, **kwargs):
        if os.path.realpath(os.fspath(dst)) == hang_target:
            sys.stderr.write(f"HANGING {os.fspath(src)}\n")
            sys.stderr.flush()
            time.sleep(3600)
        return replace_before_hang(src, dst, *args, **kwargs)

    os.replace = hanging_replace

import archi3d.cli

sys.argv = ["archi3d", *sys.argv[1:]]
archi3d.cli.main()
"""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHI3D_")}
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


def run_archi3d(
    args: Sequence[str],
    *,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    wrapped: bool = False,
) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process: the installed `archi3d` script, or WRAPPER (patches from `env`)."""
    command = [sys.executable, "-c", WRAPPER, *args] if wrapped else [str(ARCHI3D), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=clean_env(env))


def start_archi3d(args: Sequence[str], *, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(ARCHI3D), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(env),
    )


def temp_files(folder: Path) -> list[str]:
    """Names of the atomic writer's temp files in `folder`."""
    return sorted(p.name for p in folder.iterdir() if TEMP_TAG in p.name)


def parse_rows(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of CSV bytes (utf-8, BOM or not), with the csv module: no type inference."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    header = next(reader)
    return header, [dict(zip(header, cells)) for cells in reader if cells]


def keys_of(data: bytes) -> list[tuple[str, str]]:
    _, rows = parse_rows(data)
    return [(r["run_id"], r["job_id"]) for r in rows]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
