"""The consolidate service (I/O around the pure reconciler): read, select, scan, reconcile, then merge and write under the table lock."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import io
import os
import pickle
import select
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pandas as pd

from archi3d.atomic import append_log_record, write_bytes_atomic
from archi3d.columns import GENERATIONS_COLUMNS, PATH_COLUMNS, PREVIEW_COLUMNS
from archi3d.csvtable import CsvTable, encode_row, read_csv_table, release_unused_memory, render_chunks
from archi3d.errors import (
    Archi3dError,
    InputError,
    Problem,
    StrictConflictError,
    TableError,
    UnknownRunError,
    WriteFailedError,
)
from archi3d.lock import DEFAULT_LOCK_TIMEOUT, table_lock
from archi3d.manifest import Manifest
from archi3d.model import GenerationRow, Job, Status
from archi3d.paths import PathResolver, validate_id
from archi3d.reconcile import (
    Conflict,
    Options,
    StalePolicy,
    heartbeat_status,
    merge_duplicates,
    merge_winner,
    reconcile,
)
from archi3d.scan import Folder, Progress, Recorded, RunScanner
from archi3d.schema import GENERATIONS_SCHEMA, check_frame, validate_generations
from archi3d.triage import RowFacts, is_settled

__all__ = ["ConsolidateOptions", "Summary", "consolidate"]

_T = TypeVar("_T")

UTC = dt.timezone.utc
MAX_CONFLICTS = 100
MAX_WORKERS = 8


@attrs.frozen
class ConsolidateOptions:
    run_id: str
    dry_run: bool = False
    strict: bool = False
    only_status: frozenset[Status] | None = None
    fix_status: bool = True
    max_rows: int | None = None
    heartbeat_timeout: float = 600.0
    stale_policy: StalePolicy = StalePolicy.REQUEUE
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    workers: int | None = None
    """Processes deciding jobs (1 to MAX_WORKERS); None: one per core for large runs on Linux."""

    @property
    def reconcile_options(self) -> Options:
        return Options(self.fix_status, self.heartbeat_timeout, self.stale_policy)


@attrs.frozen
class Summary:
    """The record consolidate appends to logs/metrics.log (and returns)."""

    run_id: str
    dry_run: bool
    strict: bool
    written: bool
    considered: int
    upsert_inserted: int
    upsert_updated: int
    unchanged: int
    duplicate_rows_merged: int
    conflicts_resolved: int
    marker_mismatches_fixed: int
    downgraded_missing_output: int
    missing_outputs: int
    invalid_previews: int
    not_in_manifest: int
    orphans: int
    status_histogram_before: Mapping[str, int]
    status_histogram_after: Mapping[str, int]
    conflicts: tuple[Conflict, ...]
    timestamp: str
    elapsed_s: float

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"event": "consolidate"}
        for field in attrs.fields(Summary):
            if field.name == "conflicts":
                continue
            value = getattr(self, field.name)
            record[field.name] = dict(value) if isinstance(value, Mapping) else value
        record["conflicts"] = [c.to_record() for c in self.conflicts[:MAX_CONFLICTS]]
        record["conflicts_truncated"] = len(self.conflicts) > MAX_CONFLICTS
        return record


def _groups(table: CsvTable | None, run_id: str) -> dict[str, list[int]]:
    """Row indices of each job of the run, jobs in file order."""
    groups: dict[str, list[int]] = {}
    if table is None or not len(table):
        return groups
    hits = table.rows_where("run_id", run_id)
    for index, job_id in zip(hits, table.columns(hits, ("job_id",))["job_id"]):
        groups.setdefault(job_id, []).append(index)
    return groups


def _select(groups: Mapping[str, list[int]], table: CsvTable, manifest: Manifest, options: ConsolidateOptions) -> list[str]:
    """Jobs considered: CSV jobs in file order, then manifest-only ones; --only-status and --max-rows."""
    wanted = None if options.only_status is None else {s.value for s in options.only_status}
    statuses = table.column("status") if wanted is not None else []
    chosen = [j for j, rows in groups.items() if wanted is None or any(statuses[i] in wanted for i in rows)]
    if wanted is None or Status.ENQUEUED.value in wanted:
        chosen += [j for j in manifest if j not in groups]
    return chosen if options.max_rows is None else chosen[: max(options.max_rows, 0)]


@attrs.frozen(slots=False)
class _Outcome:
    """What consolidate decided for one job, in plain values (a worker process may have decided it)."""

    after: str
    """The job's status once consolidated."""
    text: tuple[str, ...] | None = None
    """Its reconciled row's cells, in `_columns` order; None when its (first) row keeps its text."""
    conflicts: tuple[Conflict, ...] = ()
    marker_mismatch_fixed: bool = False
    downgraded: bool = False
    missing_output: bool = False
    invalid_previews: int = 0

    @property
    def is_quiet(self) -> bool:
        """Nothing to report: no conflict, no fix, nothing found missing or invalid."""
        return not (
            self.conflicts or self.marker_mismatch_fixed or self.downgraded or self.missing_output or self.invalid_previews
        )


_SETTLED = {status.value: _Outcome(status.value) for status in Status}
"""The outcome of a settled row, by its status: it stays as it is."""
_BATCH = 1000
_CHECKED_AT_ONCE = 10_000
_PARALLEL_FROM = 5000
_CHUNK = 500
"""Jobs a process takes at a time: at the end, a process waits at most about a chunk's time for the others."""
_MAX_CHUNKS = 1000


@attrs.frozen
class _Plan:
    replaced: dict[int, bytes]
    appended: list[bytes]
    added_columns: list[str]
    header: list[str]
    written: list[tuple[str, ...]]
    """The text of every row written, in `header` order, and the line each will stand on."""
    written_lines: list[int]
    counts: dict[str, int]
    conflicts: list[Conflict]
    before: Counter[str]
    after: Counter[str]


_RECORDED_PATHS = ("gen_object_path", *PREVIEW_COLUMNS)
_TIME_COLUMNS = ("generation_start", "generation_end", "generation_duration_s")


def _recorded(rows: Sequence[GenerationRow]) -> Recorded:
    if not rows:
        return Recorded()
    paths = tuple(dict.fromkeys(p for r in rows for c in _RECORDED_PATHS if (p := getattr(r, c))))
    winner = merge_winner(rows)
    settled = (
        winner.status
        if len(rows) == 1
        and winner.status in (Status.COMPLETED, Status.FAILED)
        and winner.generation_start is not None
        and winner.generation_end is not None
        else None
    )
    # A merged row takes each time from whichever row has one.
    times_known = any(r.generation_start for r in rows) and any(r.generation_end for r in rows)
    return Recorded(
        paths,
        (winner.preview_1_path, winner.preview_2_path, winner.preview_3_path),
        winner.gen_object_path,
        settled,
        times_known,
    )


def _row_facts(table: CsvTable, groups: Mapping[str, list[int]], jobs: Sequence[str]) -> dict[str, RowFacts]:
    """The cells the fast path looks at, for each job of `jobs` that has exactly one row."""
    single = [j for j in jobs if len(groups.get(j, ())) == 1]
    indices = [groups[j][0] for j in single]
    if not indices:
        return {}
    cells = table.columns(indices, ("status", *_RECORDED_PATHS, *_TIME_COLUMNS, "error_msg")).values()
    # A backslash in a path cell: the few records holding one at all are looked at closely.
    data, starts, ends = table.data, table.starts, table.ends
    suspects = [i for i in indices if data.find(b"\\", starts[i], ends[i]) >= 0]
    paths = table.columns(suspects, PATH_COLUMNS).values()
    backslashed = {i for i, *cells_of_row in zip(suspects, *paths) if any("\\" in cell for cell in cells_of_row)}
    return {
        job_id: RowFacts(status, gen_object, (p1, p2, p3), bool(start and end and duration), bool(error), i in backslashed)
        for job_id, i, status, gen_object, p1, p2, p3, start, end, duration, error in zip(single, indices, *cells)
    }


def _rows_of(table: CsvTable | None, groups: Mapping[str, list[int]], jobs: Iterable[str]) -> dict[str, list[GenerationRow]]:
    if table is None:
        return {}
    wanted = [j for j in jobs if j in groups]
    indices = [i for j in wanted for i in groups[j]]
    rows = {i: GenerationRow.from_cells(cells, table.lines[i]) for i, cells in zip(indices, table.rows(indices))}
    return {j: [rows[i] for i in groups[j]] for j in wanted}


def _columns(table: CsvTable | None) -> list[str]:
    """The table's columns, then the known columns it lacks: every column a reconciled row can fill."""
    header = table.header if table is not None else ()
    return [*header, *(c for c in GENERATIONS_COLUMNS if c not in header)]


@attrs.frozen
class _Run:
    """What deciding jobs of the run takes: the table as read and its rows by job, the manifest, the scan."""

    table: CsvTable | None
    groups: Mapping[str, list[int]]
    manifest: Manifest
    scanner: RunScanner
    options: ConsolidateOptions
    now: dt.datetime


def _decide(run: _Run, jobs: Sequence[str], progress: Progress | None = None) -> dict[str, _Outcome]:
    """The outcome of each job: settled rows by the fast path, every other job through the reconciler.

    Jobs go to the reconciler in batches, so only a batch's rows are ever materialized.
    """
    table, groups, scanner = run.table, run.groups, run.scanner
    columns = _columns(table)
    facts = _row_facts(table, groups, jobs) if table is not None else {}
    outcomes: dict[str, _Outcome] = {}
    pending: dict[str, Folder] = {}

    def reconcile_pending() -> None:
        rows = _rows_of(table, groups, pending)
        jobs_to_insert = run.manifest.jobs(j for j in pending if j not in rows)
        for job_id, folder in pending.items():
            outcomes[job_id] = _reconciled(run, rows.get(job_id, []), jobs_to_insert.get(job_id), folder, job_id, columns)
        pending.clear()

    for done, job_id in enumerate(jobs, 1):
        folder = scanner.folder(job_id)
        fact = facts.get(job_id)
        markers = scanner.markers(job_id)
        heartbeat = functools.partial(_heartbeat, run, job_id) if "inprogress" in markers else None
        if fact is not None and is_settled(fact, markers, folder, scanner.folder_rel(job_id), heartbeat):
            outcomes[job_id] = _SETTLED[fact.status]
        else:
            pending[job_id] = folder
            if len(pending) >= _BATCH:
                reconcile_pending()
        if progress is not None and (done % 1000 == 0 or done == len(jobs)):
            progress(done, len(jobs))
    reconcile_pending()
    return outcomes


def _heartbeat(run: _Run, job_id: str, csv: Status) -> Status:
    started = run.scanner.marker_at(job_id, "inprogress")
    return heartbeat_status(csv, started, run.options.reconcile_options, run.now)


def _decide_in_parallel(
    run: _Run, jobs: Sequence[str], meanwhile: Callable[[], _T], progress: Progress | None = None
) -> tuple[dict[str, _Outcome], _T]:
    """`meanwhile()` (checks that need no decision), then `_decide`; for a large run, with forked workers.

    Deciding is listing, stat-ing and reading files plus pure Python: more processes are the way
    to more cores. All take chunks of jobs from one queue, so the workers decide while this process
    runs `meanwhile`, and none waits long for the others at the end. A worker only reads; it sends
    its outcomes back pickled. Whatever a worker does not deliver is decided here, so the result
    never depends on the workers. If `meanwhile` raises, the workers are stopped and nothing is decided.
    """
    count = _workers(run.options, len(jobs))
    chunks = _Chunks.of(jobs) if count > 1 else None
    workers = [w for _ in range(count - 1) if chunks is not None and (w := _start_worker(run, chunks)) is not None]
    if chunks is None or not workers:
        if chunks is not None:
            chunks.close()
        found = meanwhile()
        return _decide(run, jobs, progress), found
    started = time.monotonic()
    payloads: list[bytearray] = []
    statuses: list[int] = []
    unread = [receiving for _, receiving in workers]
    outcomes: dict[str, _Outcome] = {}
    try:
        found = meanwhile()
        for chunk in chunks:
            outcomes.update(_decide(run, chunk))
            if progress is not None:
                progress(chunks.handed_out(), len(jobs))
        # A worker far slower than this process (stuck, or starved) is given up on.
        deadline = time.monotonic() + 2 * (time.monotonic() - started) + 30
        for _, receiving in workers:
            unread.remove(receiving)  # _receive closes it
            payloads.append(_receive(receiving, deadline))
    finally:
        chunks.close()
        for receiving in unread:  # this process stopped early
            os.close(receiving)
        for at, (pid, _) in enumerate(workers):
            if at >= len(payloads) or not payloads[at]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            statuses.append(os.waitpid(pid, 0)[1])
    for status, payload in zip(statuses, payloads):
        if status == 0 and payload:
            outcomes.update(pickle.loads(payload))
    outcomes.update(_decide(run, [job_id for job_id in jobs if job_id not in outcomes]))
    if progress is not None and chunks.handed_out() < len(jobs):
        progress(len(jobs), len(jobs))
    return outcomes, found


def _start_worker(run: _Run, chunks: _Chunks) -> tuple[int, int] | None:
    """Fork a process that decides chunks and sends back its outcomes; its pid and the pipe to read them from."""
    receiving, sending = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process to be had: decide alone
        os.close(receiving)
        os.close(sending)
        return None
    if pid:
        os.close(sending)
        return pid, receiving
    status = 1  # the worker: decide, send, and leave without running any of the parent's exit code
    try:
        os.close(receiving)
        decided: dict[str, _Outcome] = {}
        for chunk in chunks:
            decided.update(_decide(run, chunk))
        sent = pickle.dumps(decided, protocol=5)
        with os.fdopen(sending, "wb") as pipe:
            pipe.write(len(sent).to_bytes(8, "big"))
            pipe.write(sent)
        status = 0
    finally:
        os._exit(status)


class _Chunks:
    """The jobs cut in chunks, and a queue of chunk numbers that the deciding processes take from, in order.

    The queue is a pipe holding every number (4 bytes each) before the fork: a read that small is
    atomic, so no chunk goes to two processes, and a process that dies holds nothing up.
    """

    def __init__(self, jobs: Sequence[str], size: int, queue: int) -> None:
        self.jobs = jobs
        self.size = size
        self._queue = queue
        self._taken = 0

    @classmethod
    def of(cls, jobs: Sequence[str]) -> _Chunks | None:
        """The chunks of `jobs`; None if the queue cannot be set up."""
        size = max(_CHUNK, -(-len(jobs) // _MAX_CHUNKS))
        queue, writing = os.pipe()
        try:
            os.set_blocking(writing, False)  # a pipe holds at least 4096 bytes: never wait on it
            numbers = b"".join(n.to_bytes(4, "little") for n in range(-(-len(jobs) // size)))
            if os.write(writing, numbers) == len(numbers):
                return cls(jobs, size, queue)
        except OSError:
            pass
        finally:
            os.close(writing)
        os.close(queue)
        return None

    def __iter__(self) -> Iterator[Sequence[str]]:
        while len(number := os.read(self._queue, 4)) == 4:
            at = int.from_bytes(number, "little") * self.size
            self._taken = at + self.size
            yield self.jobs[at : at + self.size]

    def handed_out(self) -> int:
        """Jobs in the chunks handed out (to either process) up to the last this process took."""
        return min(self._taken, len(self.jobs))

    def close(self) -> None:
        os.close(self._queue)


def _receive(fd: int, deadline: float) -> bytearray:
    """What the worker sends (its length first); empty if it does not all arrive before `deadline`."""
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        header = _read_exactly(pipe, bytearray(8), deadline)
        if not header:
            return header
        return _read_exactly(pipe, bytearray(int.from_bytes(header, "big")), deadline)


def _read_exactly(pipe: io.FileIO, buffer: bytearray, deadline: float) -> bytearray:
    """Fill `buffer` from the pipe; empty if the pipe closes or `deadline` passes first."""
    view = memoryview(buffer)
    done = 0
    while done < len(buffer):
        ready, _, _ = select.select([pipe], [], [], max(deadline - time.monotonic(), 0))
        count = pipe.readinto(view[done:]) if ready else 0
        if not count:
            return bytearray()
        done += count
    return buffer


def _workers(options: ConsolidateOptions, jobs: int) -> int:
    """Processes to decide with: one per core (up to MAX_WORKERS) on Linux for a large run, unless the options say."""
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return 1
    if options.workers is not None:
        return max(1, min(options.workers, MAX_WORKERS))
    return min(len(os.sched_getaffinity(0)), MAX_WORKERS) if jobs >= _PARALLEL_FROM else 1


def _reconciled(
    run: _Run, group: Sequence[GenerationRow], job: Job | None, folder: Folder, job_id: str, columns: Sequence[str]
) -> _Outcome:
    """One job through the reconciler (its duplicate rows merged first)."""
    evidence = run.scanner.evidence(job_id, _recorded(group), folder)
    conflicts: tuple[Conflict, ...] = ()
    first = group[0] if group else None
    row = first
    if len(group) > 1:
        row, merge = merge_duplicates(group, evidence)
        conflicts = (merge,)
    options = run.options
    decision = reconcile(row, job, evidence, options.reconcile_options, run.now, options.run_id, job_id)
    text: tuple[str, ...] | None = None
    if first is None or len(group) > 1:
        text = tuple(map(decision.row.to_cells().get, columns, repeat("")))
    elif decision.row is not first:  # reconcile returns an untouched row as it is
        text = tuple(map({**first.source, **decision.row.changed_cells(first)}.get, columns, repeat("")))
    if text is not None and first is not None and text == tuple(map(first.source.get, columns, repeat(""))):
        text = None  # the same text: the first row stays byte for byte
    return _Outcome(
        decision.row.status.value,
        text,
        conflicts + decision.conflicts,
        decision.marker_mismatch_fixed,
        decision.downgraded,
        decision.missing_output,
        len(evidence.invalid_previews),
    )


def _layout(
    table: CsvTable,
    groups: Mapping[str, list[int]],
    jobs: Sequence[str],
    outcomes: Mapping[str, _Outcome],
    manifest: Manifest,
    orphans: Sequence[str],
    before: Counter[str],
) -> _Plan:
    """The rows to replace, remove and append, and the counters, for these outcomes against `table`.

    Only the table's layout is read (its cells may be gone); `before` is the jobs' status histogram.
    """
    columns = _columns(table)
    decided = [outcomes[job_id] for job_id in jobs]
    rows = [groups.get(job_id, ()) for job_id in jobs]
    considered = sum(map(len, rows))
    after = Counter(outcome.after for outcome in decided)
    changed = [o.text for o in decided if o.text is not None]
    # A known column the file lacks is added (at the tail) only when some row has a value for it.
    width = len(table.header)
    kept = [*range(width), *(i for i in range(width, len(columns)) if any(text[i] for text in changed))]
    header = [columns[i] for i in kept]
    added = header[width:]
    counts: Counter[str] = Counter(
        considered=considered + sum(not indices for indices in rows),
        duplicate_rows_merged=sum(len(indices) - 1 for indices in rows if len(indices) > 1),
        not_in_manifest=len(groups.keys() & set(jobs) - manifest.job_ids),
        unchanged=len(jobs) - len(changed),
        orphans=len(orphans),
    )
    conflicts: list[Conflict] = []
    replaced: dict[int, bytes] = {}
    appended: list[bytes] = []
    written: list[tuple[str, ...]] = []
    written_lines: list[int] = []
    next_line = (table.lines[-1] + 1) if len(table) else 2
    for outcome, indices in zip(decided, rows):
        if outcome.text is None and len(indices) < 2 and outcome.is_quiet:
            continue  # most jobs of a consolidated run: nothing to write or count
        conflicts.extend(outcome.conflicts)
        counts["marker_mismatches_fixed"] += outcome.marker_mismatch_fixed
        counts["downgraded_missing_output"] += outcome.downgraded
        counts["missing_outputs"] += outcome.missing_output
        counts["invalid_previews"] += outcome.invalid_previews
        for other in indices[1:]:
            replaced[other] = b""
        if outcome.text is None:
            continue
        text = outcome.text if len(kept) == len(columns) else tuple(outcome.text[i] for i in kept)
        written.append(text)
        if indices:
            replaced[indices[0]] = encode_row(text, table.newline)
            written_lines.append(table.lines[indices[0]])
            counts["upsert_updated"] += 1
        else:
            appended.append(encode_row(text, table.newline))
            written_lines.append(next_line)
            next_line += 1
            counts["upsert_inserted"] += 1
    conflicts.extend(
        Conflict(job_id, "orphan", "outputs or markers of a job in neither the CSV nor the manifest", resolved=False)
        for job_id in orphans
    )
    counts["conflicts_resolved"] = sum(c.resolved for c in conflicts)
    return _Plan(replaced, appended, added, header, written, written_lines, dict(counts), conflicts, before, after)


def _statuses(table: CsvTable, groups: Mapping[str, list[int]], jobs: Sequence[str]) -> Counter[str]:
    """How many rows of these jobs hold each status."""
    return Counter(table.columns([i for job_id in jobs for i in groups.get(job_id, ())], ("status",))["status"])


def _check_written(plan: _Plan, path: Path) -> None:
    """Validate the rows the plan writes (every other row was validated as read), a slice at a time."""
    problems: list[Problem] = []
    for at in range(0, len(plan.written), _CHECKED_AT_ONCE):
        columns = zip(*plan.written[at : at + _CHECKED_AT_ONCE])
        frame = pd.DataFrame({name: pd.Series(values, dtype="str") for name, values in zip(plan.header, columns)})
        try:
            check_frame(frame, GENERATIONS_SCHEMA, str(path), plan.written_lines[at : at + _CHECKED_AT_ONCE])
        except TableError as error:
            problems.extend(error.problems)
    if problems:
        raise TableError(problems)


def consolidate(
    workspace: str | Path | PathResolver | None,
    options: ConsolidateOptions,
    *,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Reconcile one run's on-disk evidence with tables/generations.csv; returns the summary record.

    Raises InputError (bad input, exit 2), StrictConflictError (exit 1), WriteRefusedError (exit 3).
    """
    with _no_gc_pauses():
        try:
            return _consolidate(workspace, options, now, progress)
        except Archi3dError:
            raise
        except OSError as error:  # e.g. a file that cannot be read: bad input, never a traceback
            raise InputError(f"{error.filename or 'workspace'}: {error.strerror or error}") from error


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Consolidate builds ~10 long-lived objects per job and no cycles: the cyclic GC would only rescan them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _consolidate(
    workspace: str | Path | PathResolver | None,
    options: ConsolidateOptions,
    now: dt.datetime | None,
    progress: Progress | None,
) -> Summary:
    started = time.monotonic()
    resolver = workspace if isinstance(workspace, PathResolver) else PathResolver(workspace)
    run_id = validate_id(options.run_id, "run_id")
    resolver.check_layout(run_id)
    moment = now or dt.datetime.now(UTC)
    log_path = resolver.metrics_log_path()
    if os.path.lexists(log_path) and not log_path.is_file():
        raise InputError(f"{log_path}: is not a regular file, so the summary cannot be logged. Nothing was changed.")
    csv_path = resolver.generations_csv_path()
    with ThreadPoolExecutor(1) as beside:
        # Parsing the table leaves the GIL to arrow's threads: the manifest and the listings are read meanwhile.
        inputs = beside.submit(lambda: (Manifest.read(resolver, run_id), RunScanner(resolver, run_id)))
        table = read_csv_table(csv_path) if csv_path.exists() else None  # validated below, while a worker decides
        manifest, scanner = inputs.result()
    groups = _groups(table, run_id)
    if not resolver.run_root(run_id).is_dir():
        if table is not None:
            validate_generations(table)  # a broken table is the first thing to tell
        if groups:
            raise UnknownRunError(
                f"{resolver.run_root(run_id)}: folder missing while {csv_path} has"
                f" {sum(map(len, groups.values()))} rows of run {run_id!r}; with no evidence at all every"
                " completed job would be downgraded. Nothing was changed."
            )
        raise UnknownRunError(f"unknown run {run_id!r}: no row in {csv_path}, no {resolver.run_root(run_id)} folder")
    base = table if table is not None else CsvTable.empty(csv_path, GENERATIONS_COLUMNS)
    jobs = _select(groups, base, manifest, options)
    run = _Run(table, groups, manifest, scanner, options, moment)

    def validate_and_find_orphans() -> tuple[str, ...]:
        if table is not None:
            validate_generations(table)
        return _orphans(scanner, base, groups, manifest)

    outcomes, orphans = _decide_in_parallel(run, jobs, validate_and_find_orphans, progress)
    before = _statuses(base, groups, jobs)
    # From here on the table's bytes and layout are enough (a re-plan reads the file afresh): its cells go.
    base = base.without_cells()
    run = attrs.evolve(run, table=base if table is not None else None)
    del table
    release_unused_memory()
    plan = _layout(base, groups, jobs, outcomes, manifest, orphans, before)
    _check_written(plan, csv_path)
    written = False

    def summary() -> Summary:
        return _summary(options, plan, written, moment, time.monotonic() - started)

    if options.strict and plan.conflicts:
        result = summary()
        append_log_record(log_path, result.to_record())
        raise StrictConflictError(f"--strict: {len(plan.conflicts)} conflicts found; nothing was written", result)
    if not options.dry_run and (plan.replaced or plan.appended):
        plan, written = _write(resolver, run, plan, jobs, outcomes, orphans)
    result = summary()
    try:
        append_log_record(log_path, result.to_record())
    except WriteFailedError as error:
        if not written:
            raise
        raise WriteFailedError(
            f"{csv_path} was written ({result.upsert_inserted} rows inserted, {result.upsert_updated} updated),"
            f" but its summary record was not: {error}",
            error,
        ) from error
    return result


def _orphans(scanner: RunScanner, table: CsvTable, groups: Mapping[str, list[int]], manifest: Manifest) -> tuple[str, ...]:
    """Jobs with outputs or markers that neither the CSV nor the manifest knows."""
    unknown = scanner.job_ids_on_disk() - groups.keys() - manifest.job_ids
    if unknown:  # some may be folders of old layouts (outputs/<algo>/) that the run's rows point into
        indices = [i for rows in groups.values() for i in rows]
        unknown -= table.folders_under(indices, _RECORDED_PATHS, f"runs/{scanner.run_id}/outputs/")
    return tuple(sorted(unknown))


def _write(
    resolver: PathResolver,
    run: _Run,
    plan: _Plan,
    jobs: Sequence[str],
    outcomes: Mapping[str, _Outcome],
    orphans: Sequence[str],
) -> tuple[_Plan, bool]:
    """Under the lock: merge against the file as it is now, reconciling again the jobs whose rows changed.

    An outcome is a pure function of (rows, evidence): a job whose rows still have the same bytes
    keeps its outcome; a job a worker wrote meanwhile is decided again from its new rows.
    """
    path = resolver.generations_csv_path()
    try:
        resolver.tables_root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteFailedError.of(resolver.tables_root, error, "Nothing was written.") from error
    table, groups = run.table, run.groups
    with table_lock(path, run.options.lock_timeout):
        base = table if table is not None else CsvTable.empty(path, GENERATIONS_COLUMNS)
        if not _holds(path, table.data if table is not None else None):
            fresh = read_csv_table(path, validate_generations) if path.exists() else None
            base = fresh if fresh is not None else CsvTable.empty(path, GENERATIONS_COLUMNS)
            fresh_groups = _groups(fresh, run.options.run_id)
            same_header = table is not None and fresh is not None and fresh.header == table.header

            def rows_bytes(source: CsvTable | None, of: Mapping[str, list[int]], job_id: str) -> list[bytes]:
                return [source.raw(i) for i in of.get(job_id, ())] if source is not None else []

            changed = [
                j for j in jobs if not same_header or rows_bytes(fresh, fresh_groups, j) != rows_bytes(table, groups, j)
            ]
            outcomes = {**outcomes, **_decide(attrs.evolve(run, table=fresh, groups=fresh_groups), changed)}
            plan = _layout(base, fresh_groups, jobs, outcomes, run.manifest, orphans, _statuses(base, fresh_groups, jobs))
            _check_written(plan, path)
            if not (plan.replaced or plan.appended):
                return plan, False
        write_bytes_atomic(path, render_chunks(base, plan.replaced, plan.appended, plan.added_columns))
    return plan, True


def _holds(path: Path, data: bytes | None) -> bool:
    """Whether the file holds exactly `data` (None: there is no file), read piece by piece."""
    if data is None:
        return not path.exists()
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return False
    with handle:
        if os.fstat(handle.fileno()).st_size != len(data):
            return False
        for at in range(0, len(data), 1 << 22):
            # bytes against bytes is one memcmp (against a memoryview, a comparison per byte)
            if handle.read(1 << 22) != data[at : at + (1 << 22)]:
                return False
        return not handle.read(1)


_COUNTERS = (
    "considered", "upsert_inserted", "upsert_updated", "unchanged", "duplicate_rows_merged",
    "conflicts_resolved", "marker_mismatches_fixed", "downgraded_missing_output", "missing_outputs",
    "invalid_previews", "not_in_manifest", "orphans",
)  # fmt: skip


def _summary(
    options: ConsolidateOptions,
    plan: _Plan,
    written: bool,
    now: dt.datetime,
    elapsed: float,
) -> Summary:
    return Summary(
        run_id=options.run_id,
        dry_run=options.dry_run,
        strict=options.strict,
        written=written,
        **{name: plan.counts.get(name, 0) for name in _COUNTERS},
        status_histogram_before=dict(sorted(plan.before.items())),
        status_histogram_after=dict(sorted(plan.after.items())),
        conflicts=tuple(plan.conflicts),
        timestamp=now.isoformat(),
        elapsed_s=round(elapsed, 3),
    )
