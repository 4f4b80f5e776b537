"""The archi3d command line: parses arguments, calls the package, prints plain text."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from archi3d.errors import Archi3dError, TableError

__all__ = ["app", "main"]

app = typer.Typer(
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    no_args_is_help=True,
    help="archi3d: workspace tables and run consolidation for image-to-3D benchmarks.",
)

Workspace = Annotated[
    Optional[Path],
    typer.Option(
        "--workspace",
        metavar="DIR",
        show_default=False,
        help="Workspace folder; default $ARCHI3D_WORKSPACE, else the current folder.",
    ),
]


class StalePolicyChoice(str, enum.Enum):
    """--stale-policy values (mirrors archi3d.reconcile.StalePolicy, kept here so --help needs no heavy import)."""

    requeue = "requeue"
    fail = "fail"
    keep = "keep"


def _fail(error: Archi3dError) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(error.exit_code)


def _progress(done: int, total: int) -> None:
    sys.stderr.write(f"\rscanning jobs: {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _histogram(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _print_summary(record: dict[str, Any]) -> None:
    mode = "dry run, nothing written" if record["dry_run"] else ("written" if record["written"] else "no change")
    lines = [
        f"consolidate run {record['run_id']}: {mode}",
        f"  considered {record['considered']}: inserted {record['upsert_inserted']}, updated"
        f" {record['upsert_updated']}, unchanged {record['unchanged']}, duplicate rows merged"
        f" {record['duplicate_rows_merged']}",
        f"  conflicts resolved {record['conflicts_resolved']}, marker mismatches fixed"
        f" {record['marker_mismatches_fixed']}, downgraded (missing output) {record['downgraded_missing_output']}",
        f"  missing outputs {record['missing_outputs']}, invalid previews {record['invalid_previews']},"
        f" not in manifest {record['not_in_manifest']}, orphans {record['orphans']}",
        f"  status before: {_histogram(record['status_histogram_before'])}",
        f"  status after:  {_histogram(record['status_histogram_after'])}",
    ]
    for conflict in record["conflicts"][:20]:
        lines.append(f"  conflict {conflict['job_id']}: {conflict['kind']}: {conflict['detail']}")
    hidden = len(record["conflicts"]) - 20
    if hidden > 0 or record["conflicts_truncated"]:
        lines.append("  ... more conflicts in the log record (--json)")
    lines.append(f"  elapsed {record['elapsed_s']:.3f} s")
    typer.echo("\n".join(lines))


@app.command(short_help="Reconcile a run's evidence with tables/generations.csv.")
def consolidate(
    run_id: Annotated[str, typer.Option("--run-id", metavar="ID", help="The run to consolidate.")],
    workspace: Workspace = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and report; write nothing but the metrics.log record.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Any conflict is an error (exit 1); nothing written.")] = False,
    only_status: Annotated[
        Optional[str],
        typer.Option(
            "--only-status",
            metavar="LIST",
            show_default=False,
            help="Consider only jobs with these CSV statuses, comma-separated: enqueued,running,completed,failed.",
        ),
    ] = None,
    fix_status: Annotated[
        bool, typer.Option("--fix-status/--no-fix-status", help="Apply status changes, or only report them.")
    ] = True,
    max_rows: Annotated[
        Optional[int],
        typer.Option(
            "--max-rows",
            metavar="N",
            min=0,
            show_default=False,
            help="Consider at most N jobs: CSV jobs in file order, then manifest-only jobs.",
        ),
    ] = None,
    heartbeat_timeout: Annotated[
        float,
        typer.Option("--heartbeat-timeout", metavar="S", min=0, help="Seconds after which an .inprogress marker is stale."),
    ] = 600.0,
    stale_policy: Annotated[
        StalePolicyChoice,
        typer.Option("--stale-policy", help="What a stale heartbeat with nothing terminal becomes."),
    ] = StalePolicyChoice.requeue,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout", metavar="S", min=0, help="Seconds to wait for the table lock (and for a refused replace)."
        ),
    ] = 30.0,
    workers: Annotated[
        Optional[int],
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            max=8,  # consolidation.MAX_WORKERS (not imported here: the CLI starts without pandas)
            show_default=False,
            help="Processes that decide jobs, 1 to 8 (default: one per core, for runs of 5,000 jobs or more on Linux).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary record as JSON.")] = False,
) -> None:
    """Reconcile a run's on-disk evidence (markers, objects, previews, error files, worker log) with
    tables/generations.csv, and append the summary to logs/metrics.log.

    Exit status: 0 done; 1 --strict and conflicts found; 2 bad input; 3 the table lock or replace
    timed out (nothing lost).
    """
    from archi3d.consolidation import ConsolidateOptions, Summary
    from archi3d.consolidation import consolidate as run_consolidate
    from archi3d.errors import InputError, StrictConflictError
    from archi3d.model import Status
    from archi3d.rules import StalePolicy

    try:
        statuses = None
        if only_status is not None:
            names = [s.strip() for s in only_status.split(",") if s.strip()]
            bad = [n for n in names if n not in {s.value for s in Status}]
            if bad or not names:
                raise InputError(f"--only-status: expected enqueued, running, completed or failed, found {only_status!r}")
            statuses = frozenset(Status(n) for n in names)
        options = ConsolidateOptions(
            run_id=run_id,
            dry_run=dry_run,
            strict=strict,
            only_status=statuses,
            fix_status=fix_status,
            max_rows=max_rows,
            heartbeat_timeout=heartbeat_timeout,
            stale_policy=StalePolicy(stale_policy.value),
            lock_timeout=lock_timeout,
            workers=workers,
        )
        progress = _progress if sys.stderr.isatty() and not as_json else None
        summary = run_consolidate(workspace, options, progress=progress)
    except StrictConflictError as error:
        if isinstance(error.summary, Summary):
            record = error.summary.to_record()
            typer.echo(json.dumps(record, indent=2)) if as_json else _print_summary(record)
        raise _fail(error) from None
    except Archi3dError as error:
        raise _fail(error) from None
    record = summary.to_record()
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        _print_summary(record)


@app.command(short_help="Check generations.csv (and a manifest) against the schema.")
def validate(
    workspace: Workspace = None,
    run_id: Annotated[
        Optional[str],
        typer.Option("--run-id", metavar="ID", show_default=False, help="Also validate this run's manifest.csv."),
    ] = None,
) -> None:
    """Validate tables/generations.csv (and a run's manifest): one line per problem.

    Exit status: 0 valid; 2 not valid (each problem printed as file:line: column: message).
    """
    from archi3d.csvtable import read_csv_table
    from archi3d.errors import InputError
    from archi3d.paths import PathResolver, validate_id
    from archi3d.schema import validate_generations, validate_manifest

    resolver = PathResolver(workspace)
    problems: list[str] = []
    targets = [(resolver.generations_csv_path(), validate_generations)]
    try:
        if run_id is not None:
            targets.append((resolver.manifest_path(validate_id(run_id, "run_id")), validate_manifest))
        resolver.check_layout()
    except InputError as error:
        raise _fail(error) from None
    for path, check in targets:
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        try:
            read_csv_table(path, check)
        except TableError as error:
            problems.extend(str(p) for p in error.problems)
        except Archi3dError as error:
            problems.append(str(error))
    if problems:
        typer.echo("\n".join(problems))
        typer.echo(f"{len(problems)} problem(s) found", err=True)
        raise typer.Exit(2)
    typer.echo("valid: " + ", ".join(str(p) for p, _ in targets))


@app.command(short_help="Write a demo workspace with every situation consolidate handles.")
def demo(
    workspace: Annotated[
        Path, typer.Option("--workspace", metavar="DIR", help="Folder to create (new or empty).")
    ] = Path("demo-workspace"),
    jobs: Annotated[int, typer.Option("--jobs", metavar="N", min=40, help="Jobs in the demo run.")] = 200,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="The same seed gives the same workspace.")] = 0,
) -> None:
    """Write a realistic demo workspace (every situation consolidate handles) to practise on."""
    from archi3d.demo import build_demo_workspace

    if workspace.exists() and any(workspace.iterdir()):
        typer.echo(f"error: {workspace} exists and is not empty", err=True)
        raise typer.Exit(2)
    try:
        built = build_demo_workspace(workspace, jobs=jobs, seed=seed)
    except OSError as error:
        where = error.filename or workspace
        typer.echo(f"error: {where}: {error.strerror or error}; the demo workspace {workspace} is incomplete", err=True)
        raise typer.Exit(3) from None
    typer.echo(f"demo workspace written to {built.workspace}")
    typer.echo(f"  run {built.run_id}: {jobs} jobs (and run {built.other_run_id} that must stay untouched)")
    typer.echo(f"  consolidate it with: archi3d consolidate --workspace {workspace} --run-id {built.run_id}")


def main() -> None:
    app()
