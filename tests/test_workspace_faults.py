"""Integration: a shared workspace's edges (full disks, logs that cannot be appended, layout folders that are
links, a linked table, very wide tables), through the CLI in real processes and through the Python API."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archi3d import ConsolidateOptions, consolidate
from archi3d.csvtable import read_csv_table
from archi3d.demo import build_demo_workspace
from archi3d.schema import validate_generations
from reliability_support import clean_env, temp_files
from workspace_builder import (
    NOW,
    RUN,
    TABLE_COLUMNS,
    ago,
    csv_path,
    gen_row,
    marker,
    output,
    small_run,
    table_bytes,
    write_manifest,
    write_table,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file size limits, links and mounts")

_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as on a full disk
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
import archi3d.cli
sys.argv = ["archi3d", *sys.argv[2:]]
archi3d.cli.main()
"""


def archi3d_with_file_limit(limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process that cannot write a file past `limit` bytes."""
    command = [sys.executable, "-c", _LIMITED, str(limit), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=clean_env())


def consolidate_args(ws: Path, *extra: str) -> list[str]:
    return ["consolidate", "--workspace", str(ws), "--run-id", RUN, "--heartbeat-timeout", "864000000", *extra]


# ----------------------------------------------------------------------------------- full disks


def test_a_table_that_cannot_be_written_is_named_and_left_whole(tmp_path: Path) -> None:
    """Issue 13, 8: a full disk was reported as `workspace: No space left on device`, exit 2."""
    data = small_run(tmp_path)
    result = archi3d_with_file_limit(len(data) // 2, *consolidate_args(tmp_path))
    assert result.returncode == 3, result.stderr
    assert result.stderr == f"error: {csv_path(tmp_path)}: File too large. The file is unchanged.\n"
    assert table_bytes(tmp_path) == data
    assert temp_files(csv_path(tmp_path).parent) == []


def test_a_summary_that_cannot_be_logged_after_the_write_says_the_table_was_written(tmp_path: Path) -> None:
    """Issue 13, 8: exit 2 after the table was already written, with nothing saying so."""
    data = small_run(tmp_path)
    log = tmp_path / "logs" / "metrics.log"
    log.parent.mkdir()
    log.write_bytes(b"x" * 65536)  # the log is at the limit, the table far below it
    result = archi3d_with_file_limit(65536, *consolidate_args(tmp_path))
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"error: {csv_path(tmp_path)} was written (0 rows inserted, 3 updated), but")
    assert f"{log}: File too large. The record was not appended." in result.stderr
    assert "Traceback" not in result.stderr
    assert table_bytes(tmp_path) != data
    read_csv_table(csv_path(tmp_path), validate_generations)
    assert log.read_bytes() == b"x" * 65536


def test_demo_on_a_full_disk_says_so_without_a_traceback(tmp_path: Path) -> None:
    """Issue 13, 9: `archi3d demo` on a full disk printed an OSError traceback."""
    result = archi3d_with_file_limit(2000, "demo", "--workspace", str(tmp_path / "demo"))
    assert result.returncode == 3
    assert result.stderr.startswith("error: ") and "File too large" in result.stderr
    assert "Traceback" not in result.stderr
    assert "incomplete" in result.stderr


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `folder` (needs the right to mount: root here, skipped elsewhere)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_really_full_disk_is_exit_3_naming_the_table(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "512k") as ws:
        data = small_run(ws)
        filler = os.open(ws / "filler", os.O_WRONLY | os.O_CREAT)  # leave less room than the new table needs
        with contextlib.suppress(OSError):
            while True:
                os.write(filler, b"\0" * 4096)
        os.close(filler)
        result = subprocess.run(
            [str(Path(sys.executable).with_name("archi3d")), *consolidate_args(ws)],
            capture_output=True,
            text=True,
            env=clean_env(),
        )
        assert result.returncode == 3, result.stderr
        assert result.stderr.startswith(f"error: {csv_path(ws)}: No space left on device.")
        assert table_bytes(ws) == data
        assert temp_files(csv_path(ws).parent) == []


# ----------------------------------------------------------------------------------- links


@pytest.mark.parametrize(
    "linked",
    [("runs",), ("runs", "demo-run", "outputs"), ("runs", "demo-run", "state"), ("tables",), ("logs",)],
    ids="/".join,
)
def test_layout_folders_that_are_links_are_followed(tmp_path: Path, linked: tuple[str, ...]) -> None:
    """Issue 13, 4: with outputs linked to another disk, completed jobs were downgraded "missing generated.glb"."""
    plain = build_demo_workspace(tmp_path / "plain", jobs=60, seed=3).workspace
    moved = tmp_path / "moved"
    shutil.copytree(plain, moved, symlinks=True)
    folder = moved.joinpath(*linked)
    disk = tmp_path / "other-disk" / folder.name
    disk.parent.mkdir()
    shutil.move(str(folder), str(disk))
    folder.symlink_to(disk)
    summaries = [consolidate(ws, ConsolidateOptions(run_id="demo-run"), now=NOW) for ws in (plain, moved)]
    assert summaries[1].to_record() | {"elapsed_s": 0} == summaries[0].to_record() | {"elapsed_s": 0}
    assert table_bytes(moved) == table_bytes(plain)
    assert folder.is_symlink()


def test_consolidate_keeps_a_linked_table_a_link(tmp_path: Path) -> None:
    """Issue 13, 3: the link was replaced by a regular file; the shared target never saw the repair."""
    data = small_run(tmp_path)
    shared = tmp_path.parent / f"{tmp_path.name}-shared" / "generations.csv"
    shared.parent.mkdir()
    shared.write_bytes(data)
    csv_path(tmp_path).unlink()
    csv_path(tmp_path).symlink_to(shared)
    summary = consolidate(tmp_path, ConsolidateOptions(run_id=RUN), now=NOW)
    assert summary.written
    assert csv_path(tmp_path).is_symlink() and shared.read_bytes() != data
    read_csv_table(shared, validate_generations)
    assert temp_files(shared.parent) == [] and temp_files(csv_path(tmp_path).parent) == []


# ----------------------------------------------------------------------------------- wide tables


def test_a_table_of_ten_thousand_columns_consolidates_in_seconds(tmp_path: Path) -> None:
    """Issue 13, 12: 95 s for 60 jobs (something was quadratic in columns); about 2 s now, on 2 cores."""
    jobs = [f"j{i}" for i in range(60)]
    columns = (*TABLE_COLUMNS, *(f"metric_{i}" for i in range(10_000 - len(TABLE_COLUMNS))))
    write_manifest(tmp_path, jobs)
    write_table(tmp_path, [gen_row(j, "completed" if i < 30 else "enqueued") for i, j in enumerate(jobs)], columns)
    for job in jobs[:20]:
        marker(tmp_path, job, "completed", ago(100))
        output(tmp_path, job)
    started = time.monotonic()
    summary = consolidate(tmp_path, ConsolidateOptions(run_id=RUN), now=NOW)
    assert time.monotonic() - started < 30
    assert (summary.considered, summary.downgraded_missing_output) == (60, 10)
    assert read_csv_table(csv_path(tmp_path)).header == columns
    assert os.path.getsize(csv_path(tmp_path)) > 60 * 10_000
