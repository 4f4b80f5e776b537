"""archi3d explain: for a few jobs of a run, their evidence with its sources, the rule that decides, the
cells consolidate would change and the conflicts. Reads only those jobs' files and the table; writes
nothing and takes no lock."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

import attrs

from archi3d.consolidation.deciding import RunContext, reconcile_job
from archi3d.consolidation.options import ConsolidateOptions
from archi3d.consolidation.selection import job_rows
from archi3d.csvtable import read_csv_table
from archi3d.errors import InputError, TableError, UnknownRunError
from archi3d.files import is_png, marker_reading, sha256_of
from archi3d.formats import UTC
from archi3d.manifest import Manifest
from archi3d.model import GenerationRow, Job, format_timestamp
from archi3d.paths import PathResolver, validate_id
from archi3d.scan import MARKER_KINDS, RunScanner

__all__ = ["Explanation", "explain"]


@attrs.frozen
class Explanation:
    """What consolidate sees of one job and what it would do, with where each piece comes from."""

    job_id: str
    rows: tuple[tuple[int | None, dict[str, str]], ...]
    """The job's rows in the table: their line and cells."""
    manifest: dict[str, str] | None
    """The job's manifest entry, if it has one."""
    markers: tuple[tuple[str, str, str], ...]
    """Each state marker: its kind, its time, and whether the time was written inside it or is the file's."""
    error_txt: str | None
    worker_log: tuple[tuple[str, str, float | None], ...]
    """Each job_completed/job_failed event: its status, the line's time (the job's end), duration_s."""
    metadata: str
    objects: tuple[dict[str, Any], ...]
    """Every *.glb of the job's folder (and the file its row names): path, bytes, sha256, chosen or not."""
    previews: tuple[dict[str, Any], ...]
    rule: str
    """The rule of DESIGN.md's status truth table that decides."""
    status_before: str
    status_after: str
    changes: tuple[tuple[str, str, str], ...]
    """Each cell that would change: column, before, after."""
    conflicts: tuple[dict[str, str], ...]

    def to_record(self) -> dict[str, Any]:
        return attrs.asdict(self)


def explain(
    workspace: str | os.PathLike[str] | PathResolver | None,
    options: ConsolidateOptions,
    job_ids: Sequence[str],
    *,
    now: dt.datetime | None = None,
) -> list[Explanation]:
    """Explain what consolidate (with `options`) would decide for each job of `job_ids`."""
    resolver = workspace if isinstance(workspace, PathResolver) else PathResolver(workspace)
    run_id = validate_id(options.run_id, "run_id")
    jobs = [validate_id(job_id, "job_id") for job_id in dict.fromkeys(job_ids)]
    resolver.check_layout(run_id)
    if not resolver.run_root(run_id).is_dir():
        raise UnknownRunError(f"unknown run {run_id!r}: no {resolver.run_root(run_id)} folder")
    rows = _rows(resolver, run_id, jobs)
    manifest = Manifest.read(resolver, run_id)
    entries = manifest.jobs(jobs)
    unknown = [job_id for job_id in jobs if job_id not in rows and job_id not in entries]
    if unknown:
        raise InputError(
            f"unknown job {', '.join(unknown)}: no row of run {run_id!r} in {resolver.generations_csv_path()}"
            " and not in its manifest; consolidate leaves it alone"
        )
    scanner = RunScanner(resolver, run_id, jobs)
    run = RunContext(
        table=None, groups={}, manifest=manifest, scanner=scanner, options=options, now=now or dt.datetime.now(UTC)
    )
    return [_explain(resolver, run, job_id, rows.get(job_id, []), entries.get(job_id)) for job_id in jobs]


def _rows(resolver: PathResolver, run_id: str, jobs: Sequence[str]) -> dict[str, list[GenerationRow]]:
    """The rows of these jobs, found by their keys alone (the rest of the table is not parsed)."""
    path = resolver.generations_csv_path()
    if not path.exists():
        return {}
    table = read_csv_table(path, columns=("run_id", "job_id"))

    def row(index: int) -> GenerationRow:
        try:
            return GenerationRow.from_cells(table.record(index), table.lines[index])
        except ValueError as error:
            raise TableError.single(table.name, table.lines[index], None, str(error)) from None

    return {job_id: [row(i) for i in indices] for job_id, indices in job_rows(table, run_id, set(jobs)).items()}


def _explain(
    resolver: PathResolver, run: RunContext, job_id: str, group: list[GenerationRow], job: Job | None
) -> Explanation:
    scanner = run.scanner
    listing = scanner.listing(job_id)
    reconciled = reconcile_job(run, group, job, listing, job_id)
    decision, evidence = reconciled.decision, reconciled.evidence
    before = dict(group[0].source) if group else {}  # the row as the file holds it (before any merge)
    after = decision.row.to_cells()
    changes = tuple((c, before.get(c, ""), text) for c, text in after.items() if before.get(c, "") != text)
    state = resolver.state_dir(run.options.run_id)
    markers = []
    for kind in sorted(scanner.markers(job_id) & MARKER_KINDS):
        moment, source = marker_reading(state / f"{job_id}.{kind}")
        markers.append((kind, format_timestamp(moment) or "no time", source))
    folder = resolver.job_outputs_dir(run.options.run_id, job_id)
    folder_rel = scanner.folder_rel(job_id)
    chosen = evidence.object_path
    objects = []
    for name, entry in sorted(listing.stated.items()):
        if name.lower().endswith(".glb"):
            size = None if entry is None else entry.size
            digest = sha256_of(folder / name) if entry is not None and entry.is_file else None
            rel = f"{folder_rel}/{name}"
            objects.append({"path": rel, "bytes": size, "sha256": digest, "chosen": rel == chosen})
    if chosen is not None and not any(o["path"] == chosen for o in objects):  # the file its row names, elsewhere
        digest = sha256_of(resolver.workspace / chosen)
        objects.append({"path": chosen, "bytes": evidence.object_size, "sha256": digest, "chosen": True})
    previews = []
    recorded = decision.row
    for slot in (1, 2, 3):
        name = f"preview_{slot}.png"
        present = name in listing.kinds
        previews.append(
            {
                "slot": slot,
                "recorded": getattr(recorded, f"preview_{slot}_path"),
                "file": f"{folder_rel}/{name}" if present else None,
                "valid_png": present and is_png(folder / name),
            }
        )
    if listing.mismatch is not None:
        metadata = f"rules the folder out: {listing.mismatch}"
    else:
        metadata = "names this run and job (or neither)" if "metadata.json" in listing.kinds else "none"
    events = tuple((e.status.value, format_timestamp(e.end), e.duration_s) for e in scanner.worker_log.events(job_id))
    return Explanation(
        job_id=job_id,
        rows=tuple((row.line, dict(row.source)) for row in group),
        manifest=job.row_cells() if job is not None else None,
        markers=tuple(markers),
        error_txt=evidence.error_text,
        worker_log=events,
        metadata=metadata,
        objects=tuple(objects),
        previews=tuple(previews),
        rule=decision.rule.value,
        status_before=before.get("status", "") or "(no row: a manifest job)",
        status_after=decision.row.status.value,
        changes=changes,
        conflicts=tuple(c.to_record() for c in (reconciled.merge, *decision.conflicts) if c is not None),
    )
