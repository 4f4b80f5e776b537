"""Integration: a writer killed (SIGKILL) at any instant leaves generations.csv whole, old or new."""

from __future__ import annotations

import csv
import functools
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import pytest

from archi3d.atomic import write_bytes_atomic
from archi3d.columns import GENERATIONS_COLUMNS
from archi3d.csvtable import BOM, read_csv_table
from archi3d.schema import validate_generations

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

ROWS = 20_000
UPDATED = 1_000  # existing rows the batch changes
INSERTED = 1_000  # rows the batch adds
KILLS = 20
AHEAD = 2  # writers started ahead, so that their imports overlap the runs
TEMP_TAG = ".archi3d-tmp-"

_WRITER = """
import sys
from pathlib import Path

import pandas as pd

from archi3d.upsert import update_csv_atomic

path, rows, updated, inserted = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
step = rows // updated
batch = [
    {"run_id": "run-1", "job_id": f"job-{i:06d}", "status": "completed",
     "generation_end": "2026-01-31T12:00:00+00:00", "notes": f"done {i}"}
    for i in range(0, rows, step)
] + [
    {"run_id": "run-2", "job_id": f"new-{i:06d}", "status": "enqueued", "generation_end": "",
     "notes": f'new, "{i}"\\r\\nsecond line'}
    for i in range(inserted)
]
frame = pd.DataFrame(batch, dtype="str")
print("ready", flush=True)
sys.stdin.readline()
print(update_csv_atomic(path, frame, ["run_id", "job_id"], lock_timeout=30), flush=True)
"""


def _initial_table() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(GENERATIONS_COLUMNS)
    blank = dict.fromkeys(GENERATIONS_COLUMNS, "")
    for i in range(ROWS):
        cells = {
            **blank,
            "product_id": f"{i:05d}",
            "variant": "default",
            "run_id": "run-1",
            "job_id": f"job-{i:06d}",
            "algo": "trellis",
            "status": "enqueued",
            "created_at": "2026-01-30T08:00:00+00:00",
            "notes": f'row {i}, "quoted"\r\nnext line' if i % 7 == 0 else f"row {i}",
            "gen_object_path": f"runs/run-1/outputs/job-{i:06d}/generated.glb",
        }
        writer.writerow([cells[c] for c in GENERATIONS_COLUMNS])
    return BOM + out.getvalue().encode("utf-8")


def _spawn(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(ROWS), str(UPDATED), str(INSERTED)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _start(proc: subprocess.Popen[str]) -> None:
    """Wait until the child has imported everything and built its batch, then let it write."""
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.stdin.write("go\n")
    proc.stdin.flush()


def _restore(path: Path, data: bytes) -> None:
    """Put the before-state back, on disk (as the reference run found it), not only in the page cache."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _temp_exists(path: Path, pid: int) -> bool:
    """Whether the temp file of writer `pid` for `path` is there (temps of killed writers may be too)."""
    prefix = f".{path.name}{TEMP_TAG}{pid}-"
    return any(p.name.startswith(prefix) for p in path.parent.iterdir())


def _wait_for(proc: subprocess.Popen[str], condition: Callable[[], bool]) -> bool:
    """Poll until `condition` holds (True) or the process exits (False)."""
    while proc.poll() is None:
        if condition():
            return True
        time.sleep(0.0005)
    return False


def test_killed_writer_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    before = _initial_table()
    path = tmp_path / "ws" / "tables" / "generations.csv"
    path.parent.mkdir(parents=True)
    reference = tmp_path / "reference" / "tables" / "generations.csv"
    reference.parent.mkdir(parents=True)
    reference.write_bytes(before)
    spawned: list[subprocess.Popen[str]] = []

    def spawn(target: Path) -> subprocess.Popen[str]:
        spawned.append(_spawn(target))
        return spawned[-1]

    try:
        # The after-state: the same upsert on a copy, run to its end; it also times the write.
        proc = spawn(reference)
        waiting = deque(spawn(path) for _ in range(AHEAD))  # writers importing while others run
        _start(proc)
        started = time.monotonic()
        assert _wait_for(proc, lambda: _temp_exists(reference, proc.pid)), "no temp file seen"
        temp_at = time.monotonic() - started
        _wait_for(proc, lambda: not _temp_exists(reference, proc.pid))
        replaced_at = time.monotonic() - started
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert out.strip() == str((INSERTED, UPDATED))
        after = reference.read_bytes()
        assert after != before
        for whole in (before, after):  # both states are whole, valid tables
            reference.write_bytes(whole)
            assert len(read_csv_table(reference, validate_generations)) in (ROWS, ROWS + INSERTED)

        rng = random.Random(20260131)
        outcomes: list[tuple[str, int | None, bool]] = []
        for attempt in range(KILLS):
            _restore(path, before)
            current = waiting.popleft()
            _start(current)
            if attempt + AHEAD < KILLS:
                waiting.append(spawn(path))
            mid_write = False
            if attempt % 2 == 0:  # anywhere in the upsert: reading, validating, rendering, writing
                time.sleep(rng.uniform(0, replaced_at * 1.3))
            else:  # within the write: temp file written and fsynced, replaced, folder fsynced
                mid_write = _wait_for(current, functools.partial(_temp_exists, path, current.pid))
                time.sleep(rng.uniform(0, (replaced_at - temp_at) * 2))
            current.send_signal(signal.SIGKILL)
            current.communicate(timeout=60)

            data = path.read_bytes()
            state = "before" if data == before else "after" if data == after else "other"
            outcomes.append((state, current.returncode, mid_write))
            assert state != "other", f"attempt {attempt}: the file is neither the old nor the new table"
            assert len(read_csv_table(path)) == (ROWS if state == "before" else ROWS + INSERTED)
    finally:
        for child in spawned:
            if child.poll() is None:
                child.kill()
            child.communicate(timeout=60)

    killed = [o for o in outcomes if o[1] == -signal.SIGKILL]
    assert len(killed) >= KILLS // 2, outcomes  # the kills really interrupted running writers
    assert any(mid for _, _, mid in killed), outcomes  # some landed once the temp file was there
    assert "before" in {state for state, _, _ in outcomes}, outcomes

    # Temp files of killed writers are recognisably ours: the next write removes them.
    write_bytes_atomic(path, before)
    assert [p.name for p in path.parent.iterdir() if TEMP_TAG in p.name] == []
    assert path.read_bytes() == before
