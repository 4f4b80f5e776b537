"""The archi3d commands: each parses its options, calls the package and prints plain text."""

from __future__ import annotations

import enum
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer

from archi3d.cli.render import FORMATS, TerminalProgress, explanation_text, problems_text, revert_text, summary_text
from archi3d.errors import Archi3dError, Problem, TableError

__all__ = ["app", "main"]

app = typer.Typer(
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="archi3d: workspace tables and run consolidation for image-to-3D benchmarks.",
)

Workspace = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        metavar="DIR",
        show_default=False,
        help="Workspace folder; default $ARCHI3D_WORKSPACE, else the current folder.",
    ),
]


class StalePolicyChoice(enum.StrEnum):
    """--stale-policy values (archi3d.rules.StalePolicy's, kept here so --help needs no heavy import)."""

    requeue = "requeue"
    fail = "fail"
    keep = "keep"


def _fail(error: Archi3dError) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(error.exit_code)


def _show_version(shown: bool) -> None:
    if shown:
        typer.echo(f"archi3d {version('archi3d')}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    context: typer.Context,
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """archi3d: workspace tables and run consolidation for image-to-3D benchmarks."""
    if context.invoked_subcommand is None:  # `archi3d` alone: its help, and success
        typer.echo(context.get_help())
        raise typer.Exit()


def _terminal_progress(wanted: bool) -> TerminalProgress | None:
    """Progress on stderr, only when it is a terminal (never in a pipe or a log file)."""
    return TerminalProgress(sys.stderr) if wanted and sys.stderr.isatty() else None


@app.command(short_help="Reconcile a run's evidence with tables/generations.csv.")
def consolidate(
    run_id: Annotated[str, typer.Option("--run-id", metavar="ID", help="The run to consolidate.")],
    workspace: Workspace = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and report; write nothing but the metrics.log record.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Any conflict is an error (exit 1); nothing written.")
    ] = False,
    only_status: Annotated[
        str | None,
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
        int | None,
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
        typer.Option(
            "--heartbeat-timeout", metavar="S", min=0, help="Seconds after which an .inprogress marker is stale."
        ),
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
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            max=8,  # consolidation.MAX_WORKERS (not imported here: the CLI starts without pandas)
            show_default=False,
            help="Processes that decide jobs, 1 to 8 (default: one per core, for runs of 5,000 jobs or more on Linux).",
        ),
    ] = None,
    verify_hashes: Annotated[
        bool,
        typer.Option("--verify-hashes", help="Hash every completed object again (else only new or resized ones)."),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="FILE",
            show_default=False,
            help="Write every change and conflict to FILE as JSON lines (also with --dry-run); see revert.",
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
                raise InputError(
                    f"--only-status: expected enqueued, running, completed or failed, found {only_status!r}"
                )
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
            verify_hashes=verify_hashes,
            report=None if report is None else str(report),
        )
        progress = _terminal_progress(not as_json)
        try:
            summary = run_consolidate(workspace, options, progress=progress)
        finally:
            if progress is not None:
                progress.close()
    except StrictConflictError as error:
        if isinstance(error.summary, Summary):
            _print_record(error.summary.to_record(), as_json)
        raise _fail(error) from None
    except Archi3dError as error:
        raise _fail(error) from None
    _print_record(summary.to_record(), as_json)


def _print_record(record: dict[str, object], as_json: bool) -> None:
    typer.echo(json.dumps(record, indent=2) if as_json else summary_text(record))


@app.command(short_help="Show the evidence of jobs and what consolidate would do with them.")
def explain(
    job_ids: Annotated[list[str], typer.Argument(metavar="JOB", help="The jobs to explain.")],
    run_id: Annotated[str, typer.Option("--run-id", metavar="ID", help="Their run.")],
    workspace: Workspace = None,
    heartbeat_timeout: Annotated[
        float, typer.Option("--heartbeat-timeout", metavar="S", min=0, help="As for consolidate.")
    ] = 600.0,
    stale_policy: Annotated[StalePolicyChoice, typer.Option("--stale-policy", help="As for consolidate.")] = (
        StalePolicyChoice.requeue
    ),
    verify_hashes: Annotated[bool, typer.Option("--verify-hashes", help="As for consolidate.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one record per job.")] = False,
) -> None:
    """For each job: every piece of evidence and where it comes from, the rule that decides its
    status, each cell consolidate would change, and the conflicts. Reads only those jobs' files and
    the table; writes nothing, takes no lock.

    Exit status: 0 explained; 2 bad input.
    """
    from archi3d.consolidation import ConsolidateOptions
    from archi3d.explain import explain as run_explain
    from archi3d.rules import StalePolicy

    options = ConsolidateOptions(
        run_id=run_id,
        heartbeat_timeout=heartbeat_timeout,
        stale_policy=StalePolicy(stale_policy.value),
        verify_hashes=verify_hashes,
    )
    try:
        records = [e.to_record() for e in run_explain(workspace, options, job_ids)]
    except Archi3dError as error:
        raise _fail(error) from None
    if as_json:
        typer.echo(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        typer.echo("\n\n".join(explanation_text(record) for record in records))


@app.command(short_help="Undo what a consolidate run changed, from its --report.")
def revert(
    report: Annotated[Path, typer.Argument(metavar="REPORT", help="The change report of the run to undo.")],
    workspace: Workspace = None,
    lock_timeout: Annotated[
        float, typer.Option("--lock-timeout", metavar="S", min=0, help="Seconds to wait for the table lock.")
    ] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Give back what the run of REPORT changed, wherever the table still holds what the run wrote:
    cells get their text back, inserted rows go, merged duplicate rows come back where they stood.
    Whatever changed since is left alone and listed. Under the table lock, one atomic write.

    Exit status: 0 done (also when some changes were left alone); 2 bad input; 3 lock or write failed.
    """
    from archi3d.revert import revert as run_revert

    try:
        result = run_revert(workspace, report, lock_timeout=lock_timeout)
    except Archi3dError as error:
        raise _fail(error) from None
    record = result.to_record()
    typer.echo(json.dumps(record, indent=2, ensure_ascii=False) if as_json else revert_text(record))


class Format(enum.StrEnum):
    """--format values of validate."""

    text = "text"
    json = "json"
    github = "github"


assert tuple(Format) == FORMATS


@app.command(short_help="Check tables against their schema (a CI gate).")
def validate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="FILE",
            show_default=False,
            help="Tables to check, each by its name: generations.csv or manifest.csv (default: the workspace's).",
        ),
    ] = None,
    workspace: Workspace = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", metavar="ID", show_default=False, help="Also validate this run's manifest.csv."),
    ] = None,
    fmt: Annotated[
        Format,
        typer.Option("--format", help="text: file:line: column: message; json: a list; github: Actions annotations."),
    ] = Format.text,
) -> None:
    """Validate tables/generations.csv (and a run's manifest), or the given CSV files: every problem
    with its file, line and column.

    Exit status: 0 valid; 2 any problem (or bad input).
    """
    from archi3d.csvtable import read_csv_table
    from archi3d.errors import InputError
    from archi3d.paths import PathResolver, validate_id
    from archi3d.schema import validate_generations, validate_manifest

    schemas = {"generations.csv": validate_generations, "manifest.csv": validate_manifest}
    try:
        if files:
            unknown = [str(f) for f in files if f.name not in schemas]
            if unknown:
                raise InputError(f"{', '.join(unknown)}: expected tables named generations.csv or manifest.csv")
            targets = [(f, schemas[f.name]) for f in files]
        else:
            resolver = PathResolver(workspace)
            targets = [(resolver.generations_csv_path(), validate_generations)]
            if run_id is not None:
                targets.append((resolver.manifest_path(validate_id(run_id, "run_id")), validate_manifest))
            resolver.check_layout()
    except InputError as error:
        raise _fail(error) from None
    problems: list[Problem] = []
    for path, check in targets:
        if not path.exists():
            problems.append(Problem(str(path), None, None, "missing"))
            continue
        try:
            read_csv_table(path, check)
        except TableError as error:
            problems.extend(error.problems)
        except Archi3dError as error:
            problems.append(Problem(str(path), None, None, str(error).removeprefix(f"{path}: ")))
    shown = problems_text(problems, fmt.value)
    if shown or fmt is Format.json:
        typer.echo(shown)
    if problems:
        typer.echo(f"{len(problems)} problem(s) found", err=True)
        raise typer.Exit(2)
    if fmt is Format.text:
        typer.echo("valid: " + ", ".join(str(p) for p, _ in targets))


@app.command(short_help="Write a demo workspace with every situation consolidate handles.")
def demo(
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            metavar="DIR",
            show_default=False,
            help="Folder to create (new or empty); default $ARCHI3D_WORKSPACE, else ./demo-workspace.",
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", metavar="N", min=40, help="Jobs in the demo run (at least 40).")] = 200,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="The same seed gives the same workspace.")] = 0,
) -> None:
    """Write a realistic demo workspace (every situation consolidate handles) to practise on.

    Exit status: 0 written; 2 the folder is not empty; 3 its files could not be written.
    """
    from archi3d.demo import build_demo_workspace

    target = workspace or Path(os.environ.get("ARCHI3D_WORKSPACE") or "demo-workspace")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        typer.echo(f"error: {target} exists and is not an empty folder", err=True)
        raise typer.Exit(2)
    progress = _terminal_progress(True)
    try:
        built = build_demo_workspace(target, jobs=jobs, seed=seed, progress=progress)
    except OSError as error:
        where = error.filename or target
        typer.echo(f"error: {where}: {error.strerror or error}; the demo workspace {target} is incomplete", err=True)
        raise typer.Exit(3) from None
    finally:
        if progress is not None:
            progress.close()
    typer.echo(f"demo workspace written to {built.workspace}")
    typer.echo(f"  run {built.run_id}: {jobs} jobs (and run {built.other_run_id} that must stay untouched)")
    typer.echo(f"  consolidate it with: archi3d consolidate --workspace {target} --run-id {built.run_id}")


def main() -> None:
    app()
