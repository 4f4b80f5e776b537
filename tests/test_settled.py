"""The settled check never changes what consolidate decides: on every situation the demo knows, under
several options, deciding with it and without it (every job through the reconciler) gives the same
outcomes. (That it saves time is the benchmark's business.)"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from archi3d import ConsolidateOptions, StalePolicy, consolidate
from archi3d.consolidation.deciding import RunContext, decide
from archi3d.consolidation.selection import job_rows, select_jobs
from archi3d.csvtable import read_csv_table
from archi3d.demo import build_demo_workspace
from archi3d.manifest import Manifest
from archi3d.paths import PathResolver
from archi3d.scan import RunScanner

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
RUN = "demo-run"
OPTIONS = [
    ConsolidateOptions(RUN),
    ConsolidateOptions(RUN, stale_policy=StalePolicy.KEEP, heartbeat_timeout=10**9),
    ConsolidateOptions(RUN, stale_policy=StalePolicy.FAIL),
    ConsolidateOptions(RUN, fix_status=False),
    ConsolidateOptions(RUN, verify_hashes=True),
]
IDS = ["default", "keep-fresh", "fail-stale", "no-fix-status", "verify-hashes"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("demo") / "ws"
    build_demo_workspace(ws, jobs=400, seed=7, other_runs=1, now=NOW)
    return ws


def _run(ws: Path, options: ConsolidateOptions) -> tuple[RunContext, list[str]]:
    resolver = PathResolver(ws)
    table = read_csv_table(resolver.generations_csv_path())
    groups = job_rows(table, RUN)
    manifest = Manifest.read(resolver, RUN)
    run = RunContext(table, groups, manifest, RunScanner(resolver, RUN), options, NOW)
    return run, select_jobs(groups, table, manifest, options)


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
@pytest.mark.parametrize("consolidated", [False, True], ids=["as-built", "consolidated"])
def test_the_settled_check_decides_what_the_reconciler_decides(
    demo: Path, tmp_path: Path, options: ConsolidateOptions, consolidated: bool
) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(demo, ws, symlinks=True)
    if consolidated:
        consolidate(ws, options, now=NOW)
    run, jobs = _run(ws, options)
    assert decide(run, jobs) == decide(run, jobs, settled_check=False)
