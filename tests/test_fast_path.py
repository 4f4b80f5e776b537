"""The fast paths (settled rows, a second process) never change what consolidate decides.

Each test consolidates copies of one demo workspace (every situation the demo knows, fixed `now`) in
two ways and demands the same table bytes and the same summary.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from archi3d import service, triage
from archi3d.demo import build_demo_workspace
from archi3d.errors import StrictConflictError, TableError
from archi3d.model import GenerationRow
from archi3d.reconcile import StalePolicy
from archi3d.service import ConsolidateOptions, Summary, consolidate
from archi3d.triage import RowFacts

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)
RUN = "demo-run"


def _comparable(summary: Summary) -> dict[str, Any]:
    record = summary.to_record()
    del record["elapsed_s"]
    return record


def _consolidate_twice(ws: Path, options: ConsolidateOptions) -> list[tuple[bytes, dict[str, Any]]]:
    """The table and summary after a first and a second consolidate."""
    results = []
    for _ in range(2):
        summary = consolidate(ws, options, now=NOW)
        results.append(((ws / "tables" / "generations.csv").read_bytes(), _comparable(summary)))
    return results


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("demo") / "ws"
    build_demo_workspace(ws, jobs=400, seed=7, other_runs=1, now=NOW)
    return ws


def _copy(demo: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(demo, target, symlinks=True)
    return target


def _never_settled(facts: RowFacts, *_: object) -> bool:
    return False


@pytest.mark.parametrize(
    "options",
    [
        ConsolidateOptions(RUN, workers=1),
        ConsolidateOptions(RUN, workers=1, stale_policy=StalePolicy.KEEP, heartbeat_timeout=10**9),
        ConsolidateOptions(RUN, workers=1, stale_policy=StalePolicy.FAIL),
        ConsolidateOptions(RUN, workers=1, fix_status=False),
    ],
    ids=["default", "keep-fresh", "fail-stale", "no-fix-status"],
)
def test_settled_rows_come_out_as_the_reconciler_would_leave_them(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: ConsolidateOptions
) -> None:
    fast = _consolidate_twice(_copy(demo, tmp_path, "fast"), options)
    monkeypatch.setattr(service, "is_settled", _never_settled)
    full = _consolidate_twice(_copy(demo, tmp_path, "full"), options)
    assert fast == full
    assert fast[1][1]["upsert_updated"] == 0 and fast[1][1]["upsert_inserted"] == 0  # idempotent


@pytest.mark.parametrize("fix_status", [True, False])
def test_evidence_left_unread_for_what_the_row_records_changes_nothing(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fix_status: bool
) -> None:
    """The scan skips the marker time of a settled status and, with both times in the row, time evidence."""
    options = ConsolidateOptions(RUN, workers=1, fix_status=fix_status)
    short = _consolidate_twice(_copy(demo, tmp_path, "short"), options)
    real = service._recorded
    skipped = []

    def everything(rows: Any) -> Any:
        recorded = real(rows)
        skipped.append(recorded.settled is not None or recorded.times_known)
        return attrs.evolve(recorded, settled=None, times_known=False)

    monkeypatch.setattr(service, "_recorded", everything)
    assert short == _consolidate_twice(_copy(demo, tmp_path, "full"), options)
    assert sum(skipped) > 20  # the demo has rows that take the shortcuts


def test_times_are_known_when_the_merged_row_will_have_a_start_and_an_end() -> None:
    def row(start: str = "", end: str = "") -> GenerationRow:
        return GenerationRow.from_cells({"run_id": RUN, "job_id": "j1", "status": "failed",
                                         "generation_start": start, "generation_end": end})  # fmt: skip

    start, end = "2026-11-01T10:00:00+00:00", "2026-11-01T10:05:00+00:00"
    assert service._recorded([row(start, end)]).times_known
    assert not service._recorded([row(start)]).times_known
    assert not service._recorded([row(end=end)]).times_known
    assert service._recorded([row(start), row(end=end)]).times_known  # merged: each time from either row
    assert not service._recorded([]).times_known


def test_the_fast_path_settles_most_rows_of_a_consolidated_run(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _copy(demo, tmp_path, "ws")
    consolidate(ws, ConsolidateOptions(RUN, workers=1), now=NOW)
    verdicts: list[bool] = []
    real = triage.is_settled

    def counting(*args: Any) -> bool:
        verdicts.append(real(*args))
        return verdicts[-1]

    monkeypatch.setattr(service, "is_settled", counting)
    consolidate(ws, ConsolidateOptions(RUN, workers=1), now=NOW)
    assert len(verdicts) > 300 and sum(verdicts) > len(verdicts) / 2  # the point of the fast path


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 jobs: the demo's 400 jobs go to both processes, interleaved."""
    monkeypatch.setattr(service, "_CHUNK", 7)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("processes", [2, 3])
def test_several_processes_decide_what_one_decides(demo: Path, tmp_path: Path, strict: bool, processes: int) -> None:
    results = []
    for workers in (1, processes):
        ws = _copy(demo, tmp_path, f"w{workers}")
        options = ConsolidateOptions(RUN, workers=workers, strict=strict)
        try:
            results.append(_consolidate_twice(ws, options))
        except StrictConflictError as error:
            assert isinstance(error.summary, Summary)
            results.append([((ws / "tables" / "generations.csv").read_bytes(), _comparable(error.summary))])
    assert results[0] == results[1]


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("failure", ["raises", "killed"])
@pytest.mark.parametrize("processes", [2, 3])
def test_failing_worker_processes_change_nothing(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, processes: int
) -> None:
    expected = _consolidate_twice(_copy(demo, tmp_path, "one"), ConsolidateOptions(RUN, workers=1))
    real = service._decide
    parent = os.getpid()
    calls = []

    def failing_in_the_worker(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != parent:
            calls.append(1)
            if failure == "raises":
                raise RuntimeError("the worker fails")
            if len(calls) == 2:  # a chunk decided and never sent, a second one taken from the queue
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    ends: list[int] = []
    real_wait = os.waitpid

    def waiting(pid: int, options: int) -> tuple[int, int]:
        ends.append(real_wait(pid, options)[1])
        return pid, ends[-1]

    monkeypatch.setattr(service, "_decide", failing_in_the_worker)
    monkeypatch.setattr(os, "waitpid", waiting)
    options = ConsolidateOptions(RUN, workers=processes)
    assert _consolidate_twice(_copy(demo, tmp_path, "two"), options) == expected
    assert len(ends) == 2 * (processes - 1)  # every worker of both runs reaped
    assert all(os.WIFSIGNALED(e) if failure == "killed" else os.WEXITSTATUS(e) == 1 for e in ends)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_each_chunk_goes_to_exactly_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "_CHUNK", 3)
    jobs = [f"job-{i}" for i in range(600)]
    chunks = service._Chunks.of(jobs)
    assert chunks is not None

    def take() -> list[str]:
        taken: list[str] = []
        for chunk in chunks:
            taken.extend(chunk)
            time.sleep(0.001)  # leave the other process its turn
        return taken

    receiving, sending = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(sending, " ".join(take()).encode())
        finally:
            os._exit(0)
    os.close(sending)
    mine = take()
    with os.fdopen(receiving, "rb") as pipe:
        theirs = pipe.read().decode().split()
    os.waitpid(pid, 0)
    chunks.close()
    assert mine and theirs
    assert sorted(mine + theirs) == sorted(jobs)
    assert chunks.handed_out() == jobs.index(mine[-1]) + 1  # up to the last chunk this process took


@pytest.mark.usefixtures("small_chunks")
def test_an_invalid_table_stops_the_worker_and_changes_nothing(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _copy(demo, tmp_path, "ws")
    table = ws / "tables" / "generations.csv"
    broken = table.read_bytes().replace(b",enqueued,", b",half-done,", 1)
    table.write_bytes(broken)
    started: list[tuple[int, int] | None] = []
    real = service._start_worker

    def recording(*args: Any) -> Any:
        started.append(real(*args))
        return started[-1]

    monkeypatch.setattr(service, "_start_worker", recording)
    with pytest.raises(TableError, match="half-done"):
        consolidate(ws, ConsolidateOptions(RUN, workers=2), now=NOW)
    assert started and started[0] is not None  # a worker was deciding while the table was checked
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # and it was stopped and reaped
    assert table.read_bytes() == broken


def test_large_runs_use_a_process_per_core_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    options = ConsolidateOptions(RUN)
    forks = hasattr(os, "fork")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    assert service._workers(options, service._PARALLEL_FROM) == (2 if forks else 1)
    assert service._workers(options, service._PARALLEL_FROM - 1) == 1
    assert service._workers(attrs.evolve(options, workers=1), 10**6) == 1
    assert service._workers(attrs.evolve(options, workers=5), 10) == (5 if forks else 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0})
    assert service._workers(options, 10**6) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)))
    assert service._workers(options, 10**6) == (service.MAX_WORKERS if forks else 1)
