"""Several processes decide what one decides, whatever happens to the workers (real processes, the public
`workers` option and the CLI)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from archi3d import ConsolidateOptions, StrictConflictError, Summary, TableError, consolidate
from archi3d.consolidation.parallel import process_count
from archi3d.demo import build_demo_workspace
from reliability_support import ARCHI3D, clean_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux")

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
RUN = "demo-run"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 jobs: three chunks, so that every process has some to decide."""
    ws = tmp_path_factory.mktemp("demo") / "ws"
    build_demo_workspace(ws, jobs=1500, seed=7, other_runs=0, now=NOW)
    return ws


def _copy(demo: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(demo, target, symlinks=True)
    return target


def _comparable(summary: Summary) -> dict[str, Any]:
    record = summary.to_record()
    del record["elapsed_s"]
    return record


def _consolidate_twice(ws: Path, options: ConsolidateOptions) -> list[tuple[bytes, dict[str, Any]]]:
    results = []
    for _ in range(2):
        try:
            summary = consolidate(ws, options, now=NOW)
        except StrictConflictError as error:
            assert isinstance(error.summary, Summary)
            summary = error.summary
        results.append(((ws / "tables" / "generations.csv").read_bytes(), _comparable(summary)))
    return results


@pytest.mark.parametrize(("processes", "strict"), [(2, False), (3, False), (2, True)])
def test_several_processes_decide_what_one_decides(demo: Path, tmp_path: Path, strict: bool, processes: int) -> None:
    one = _consolidate_twice(_copy(demo, tmp_path, "one"), ConsolidateOptions(RUN, workers=1, strict=strict))
    several = _consolidate_twice(
        _copy(demo, tmp_path, "several"), ConsolidateOptions(RUN, workers=processes, strict=strict)
    )
    assert several == one
    assert multiprocessing.active_children() == []  # every worker reaped


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


def test_a_worker_killed_mid_run_changes_nothing(demo: Path, tmp_path: Path) -> None:
    """Its chunks are decided by the main process: the table and the summary are those of one process."""
    expected = _copy(demo, tmp_path, "one")
    consolidate(expected, ConsolidateOptions(RUN, workers=1, heartbeat_timeout=10**9), now=NOW)
    ws = _copy(demo, tmp_path, "killed")
    command = [str(ARCHI3D), "consolidate", "--workspace", str(ws), "--run-id", RUN, "--workers", "3"]
    proc = subprocess.Popen([*command, "--heartbeat-timeout", str(10**9)], env=clean_env(), stderr=subprocess.PIPE)
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        workers = _children(proc.pid)
        if workers:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.001)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert killed is not None, "no worker was seen"
    assert (ws / "tables" / "generations.csv").read_bytes() == (expected / "tables" / "generations.csv").read_bytes()


def test_an_invalid_table_is_refused_with_workers_deciding_and_none_left_behind(demo: Path, tmp_path: Path) -> None:
    ws = _copy(demo, tmp_path, "ws")
    table = ws / "tables" / "generations.csv"
    broken = table.read_bytes().replace(b",enqueued,", b",half-done,", 1)
    table.write_bytes(broken)
    with pytest.raises(TableError, match="half-done"):
        consolidate(ws, ConsolidateOptions(RUN, workers=2), now=NOW)
    assert table.read_bytes() == broken
    assert multiprocessing.active_children() == []


def test_large_runs_use_a_process_per_core_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    options = ConsolidateOptions(RUN)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    assert process_count(options, 5000) == 2
    assert process_count(options, 4999) == 1
    assert process_count(ConsolidateOptions(RUN, workers=1), 10**6) == 1
    assert process_count(ConsolidateOptions(RUN, workers=5), 10) == 5
    assert process_count(ConsolidateOptions(RUN, workers=99), 10) == 8
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0})
    assert process_count(options, 10**6) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)))
    assert process_count(options, 10**6) == 8
