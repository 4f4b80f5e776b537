"""Deciding a large run with several processes: the standard library's process pool, forked from this one."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, ProcessPoolExecutor, wait
from typing import TypeVar

from archi3d.consolidation.deciding import Outcome, RunContext, decide
from archi3d.consolidation.options import MAX_WORKERS, ConsolidateOptions
from archi3d.consolidation.selection import considered_rows
from archi3d.progress import Progress

__all__ = ["DECIDING", "decide_all", "process_count"]

DECIDING = "deciding jobs"

_T = TypeVar("_T")
_PARALLEL_FROM = 5000
"""Jobs from which a run is decided by one process per core (below, the pool costs more than it saves)."""
_CHUNK = 500
"""Jobs a process takes at a time: at the end, a process waits at most about a chunk's time for the others."""
_MAX_CHUNKS = 1000
IDLE_S = 120.0
"""Seconds without a chunk delivered after which the workers are given up on."""

_run: RunContext | None = None
"""The run the pool's workers decide: set before they are forked, so they inherit it (it is never pickled)."""


def process_count(options: ConsolidateOptions, jobs: int) -> int:
    """Processes to decide with: one per core (up to MAX_WORKERS) on Linux for a large run, unless the options say."""
    if not sys.platform.startswith("linux"):
        return 1  # the workers inherit the run by fork
    if options.workers is not None:
        return max(1, min(options.workers, MAX_WORKERS))
    return min(len(os.sched_getaffinity(0)), MAX_WORKERS) if jobs >= _PARALLEL_FROM else 1


def _decide_chunk(jobs: Sequence[str]) -> dict[str, Outcome]:
    assert _run is not None, "a worker forked without its run"
    return decide(_run, jobs)


def decide_all(
    run: RunContext, jobs: Sequence[str], meanwhile: Callable[[], _T], progress: Progress | None = None
) -> tuple[dict[str, Outcome], _T]:
    """`meanwhile()` (checks that need no decision), and the outcome of every job.

    `progress(DECIDING, done, total)` counts rows as the summary's `considered` does.

    Deciding is listing, stat-ing and reading files plus pure Python: more processes are the way to
    more cores. For a large run the jobs go in chunks to a pool of processes forked from this one
    (one per core), which start at once while this process runs `meanwhile` and then gathers their
    outcomes; a worker only reads. Whatever a worker does not deliver (it raised, died, or went
    quiet for IDLE_S seconds) is decided here, so the result never depends on the workers.
    """
    total = considered_rows(run.groups, jobs)
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            progress(DECIDING, done, total)

    count = process_count(run.options, len(jobs))
    if count == 1:
        found = meanwhile()
        return decide(run, jobs, advance), found
    global _run
    size = max(_CHUNK, -(-len(jobs) // _MAX_CHUNKS))
    chunks = [jobs[at : at + size] for at in range(0, len(jobs), size)]
    before = set(multiprocessing.active_children())
    _run = run
    # A forked worker's collections would touch every object it inherited, copying each page of them:
    # it freezes them first (its own objects are collected as usual; the caller's process is left alone).
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork"), initializer=gc.freeze)
    given_up = False
    try:
        futures = {chunk_at: _submitted(pool, chunk) for chunk_at, chunk in enumerate(chunks)}
        found = meanwhile()
        outcomes: dict[str, Outcome] = {}
        left = {future: at for at, future in futures.items() if future is not None}
        while left:
            finished, _ = wait(left, timeout=IDLE_S, return_when=FIRST_COMPLETED)
            if not finished:  # stuck, or starved: what is left is decided here
                given_up = True
                break
            for future in finished:
                chunk = chunks[left.pop(future)]
                try:
                    outcomes.update(future.result())
                except Exception:
                    outcomes.update(decide(run, chunk))
                advance(considered_rows(run.groups, chunk))
        for chunk in (chunks[at] for at, future in futures.items() if future is None or future in left):
            outcomes.update(decide(run, chunk))
            advance(considered_rows(run.groups, chunk))
        return outcomes, found
    finally:
        _run = None
        if given_up:
            for process in set(multiprocessing.active_children()) - before:
                process.kill()
        pool.shutdown(cancel_futures=True)


def _submitted(pool: ProcessPoolExecutor, chunk: Sequence[str]) -> Future[dict[str, Outcome]] | None:
    """The chunk handed to the pool; None when the pool broke (a worker died) before it could take it."""
    try:
        return pool.submit(_decide_chunk, chunk)
    except BrokenExecutor:
        return None
