"""Deciding a large run with several processes: the standard library's process pool, forked from this one."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from typing import TypeVar

from archi3d.consolidation.deciding import Outcome, RunContext, decide
from archi3d.consolidation.options import MAX_WORKERS, ConsolidateOptions
from archi3d.scan import Progress

__all__ = ["decide_all", "process_count"]

_T = TypeVar("_T")
_PARALLEL_FROM = 5000
"""Jobs from which a run is decided by one process per core (below, the pool costs more than it saves)."""
_CHUNK = 500
"""Jobs a process takes at a time: at the end, a process waits at most about a chunk's time for the others."""
_MAX_CHUNKS = 1000

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

    Deciding is listing, stat-ing and reading files plus pure Python: more processes are the way to
    more cores. The jobs go to a process pool in chunks; the workers start at once while this process
    runs `meanwhile`, then this process takes the chunks no worker has started yet, from the last one
    back. A worker only reads. Whatever a worker does not deliver (it raised, died, or is far slower
    than this process) is decided here, so the result never depends on the workers.
    """
    count = process_count(run.options, len(jobs))
    if count == 1:
        found = meanwhile()
        return decide(run, jobs, progress), found
    global _run
    size = max(_CHUNK, -(-len(jobs) // _MAX_CHUNKS))
    chunks = [jobs[at : at + size] for at in range(0, len(jobs), size)]
    before = set(multiprocessing.active_children())
    _run = run
    # A forked worker's collections would touch every object it inherited, copying each page of them:
    # it freezes them first (its own objects are collected as usual; the caller's process is left alone).
    pool = ProcessPoolExecutor(count - 1, mp_context=multiprocessing.get_context("fork"), initializer=gc.freeze)
    given_up = False
    try:
        futures = [_submitted(pool, chunk) for chunk in chunks]
        found = meanwhile()
        started = time.monotonic()
        outcomes: dict[str, Outcome] = {}
        mine: set[int] = set()
        for at in reversed(range(len(chunks))):
            future = futures[at]
            if future is None or future.cancel():
                outcomes.update(decide(run, chunks[at]))
                mine.add(at)
                if progress is not None:
                    progress(_decided(futures, chunks, mine), len(jobs))
        # A worker far slower than this process (stuck, or starved) is given up on.
        deadline = time.monotonic() + 2 * (time.monotonic() - started) + 30
        for at, (future, chunk) in enumerate(zip(futures, chunks)):
            if at in mine or future is None:
                continue
            try:
                outcomes.update(future.result(timeout=max(deadline - time.monotonic(), 0)))
            except Exception:  # noqa: BLE001 - deciding here again raises what is really wrong, if anything
                given_up = given_up or not future.done()
                outcomes.update(decide(run, chunk))
        if progress is not None:
            progress(len(jobs), len(jobs))
        return outcomes, found
    finally:
        _run = None
        if given_up:
            for process in set(multiprocessing.active_children()) - before:
                process.kill()
        pool.shutdown(cancel_futures=True)  # a worker still deciding finishes its chunk


def _submitted(pool: ProcessPoolExecutor, chunk: Sequence[str]) -> Future[dict[str, Outcome]] | None:
    """The chunk handed to the pool; None when the pool broke (a worker died) before it could take it."""
    try:
        return pool.submit(_decide_chunk, chunk)
    except BrokenExecutor:
        return None


def _decided(futures: Sequence[Future[dict[str, Outcome]] | None], chunks: Sequence[Sequence[str]], mine: set[int]) -> int:
    """Jobs of the chunks decided so far, here or by a worker."""
    return sum(
        len(chunk)
        for at, (future, chunk) in enumerate(zip(futures, chunks))
        if at in mine or (future is not None and future.done() and not future.cancelled())
    )
