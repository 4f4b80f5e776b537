"""Unit tests of the pure reconciler (archi3d.reconcile): no disk, no clock, hypothesis properties."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archi3d.columns import GENERATIONS_COLUMNS, PATH_COLUMNS, PREVIEW_COLUMNS
from archi3d.merge import merge_duplicates
from archi3d.model import Evidence, GenerationRow, Job, LogEvent, Status, TimeEvidence
from archi3d.reconcile import Decision, reconcile
from archi3d.rules import DOWNGRADE_MESSAGE, Options, StalePolicy

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
RUN = "run-a"
JOB = "197260739297"
FOLDER = f"runs/{RUN}/outputs/{JOB}"
OBJ = f"{FOLDER}/generated.glb"
REF_OBJ = f"{FOLDER}/00123_oak_trellis_19726073.glb"
LEGACY_OBJ = f"runs/{RUN}/outputs/trellis/x.glb"
PREVIEWS = tuple(f"{FOLDER}/preview_{n}.png" for n in (1, 2, 3))
DEFAULT = Options()
TYPED_COLUMNS = frozenset(
    ("status", "created_at", "generation_start", "generation_end", "generation_duration_s", "unit_price_usd")
) | {"source_n_images", "used_n_images"}

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MERGE_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def row(status: str = "enqueued", **cells: str) -> GenerationRow:
    base = {"run_id": RUN, "job_id": JOB, "status": status, "product_id": "00123", "variant": "oak", "algo": "trellis"}
    base.update(cells)
    return GenerationRow.from_cells(base, line=2)


def decide(
    current: GenerationRow | None,
    evidence: Evidence,
    options: Options = DEFAULT,
    job: Job | None = None,
    now: dt.datetime = NOW,
) -> Decision:
    return reconcile(current, job, evidence, options, now, RUN, JOB)


def evidence(
    has_inprogress: bool = False,
    has_completed: bool = False,
    has_failed: bool = False,
    log_event: LogEvent | None = None,
    object_mtime: dt.datetime | None = None,
    earliest_output_at: dt.datetime | None = None,
    **fields: object,
) -> Evidence:
    """Evidence as the scan gathers it (time evidence included), named by what each marker says."""
    markers = {
        k
        for k, present in (("inprogress", has_inprogress), ("completed", has_completed), ("failed", has_failed))
        if present
    }
    times = TimeEvidence(log_event=log_event, object_mtime=object_mtime, earliest_output_at=earliest_output_at)
    return Evidence(markers=frozenset(markers), times=times, **fields)  # type: ignore[arg-type]


def with_object(path: str = OBJ, **fields: object) -> Evidence:
    values: dict[str, object] = {
        "object_path": path,
        "object_size": 100,
        "object_mtime": ago(3000),
        "existing_paths": frozenset({path}),
        "earliest_output_at": ago(3000),
    }
    values.update(fields)
    return evidence(**values)  # type: ignore[arg-type]


def kinds(decision: Decision) -> list[str]:
    return [c.kind for c in decision.conflicts]


# ----------------------------------------------------------------------------------- status precedence


def test_precedence_order() -> None:
    order = [Status.ENQUEUED, Status.RUNNING, Status.FAILED, Status.COMPLETED]
    assert [s.precedence for s in order] == sorted(s.precedence for s in order)
    assert len({s.precedence for s in Status}) == 4


statuses = st.sampled_from(list(Status))


@given(statuses, statuses)
def test_combine_is_commutative_and_picks_the_higher(a: Status, b: Status) -> None:
    assert a.combine(b) is b.combine(a)
    assert a.combine(b) in (a, b)
    assert a.combine(b).precedence == max(a.precedence, b.precedence)


@given(statuses, statuses, statuses)
def test_combine_is_associative_and_idempotent(a: Status, b: Status, c: Status) -> None:
    assert a.combine(b).combine(c) is a.combine(b.combine(c))
    assert a.combine(a) is a
    assert Status.ENQUEUED.combine(a) is a
    assert Status.COMPLETED.combine(a) is Status.COMPLETED


# ----------------------------------------------------------------------------------- the status truth table


def test_completed_marker_and_object_complete_an_enqueued_row() -> None:
    d = decide(row("enqueued"), with_object(has_completed=True, completed_at=ago(3000)))
    assert d.row.status is Status.COMPLETED
    assert d.before is Status.ENQUEUED
    assert d.marker_mismatch_fixed and not d.downgraded and not d.missing_output
    assert d.row.gen_object_path == OBJ
    assert "consolidate: enqueued -> completed" in d.row.notes


def test_completed_marker_without_object_is_a_conflict_and_not_completed() -> None:
    d = decide(row("running"), evidence(has_completed=True, completed_at=ago(3000)))
    assert d.row.status is Status.RUNNING
    assert "completed_without_object" in kinds(d)
    assert d.missing_output


def test_empty_object_is_no_object() -> None:
    ev = evidence(
        has_completed=True, completed_at=ago(10), object_path=OBJ, object_size=0, existing_paths=frozenset({OBJ})
    )
    d = decide(row("completed", gen_object_path=OBJ), ev)
    assert d.row.status is Status.FAILED
    assert d.row.error_msg == DOWNGRADE_MESSAGE
    assert d.downgraded and d.missing_output


def test_failed_marker_fails_a_running_row_and_takes_error_text() -> None:
    ev = evidence(has_failed=True, failed_at=ago(100), error_text="Error: boom\n\nTraceback:\n...")
    d = decide(row("running"), ev)
    assert d.row.status is Status.FAILED
    assert d.row.error_msg == "Error: boom\n\nTraceback:\n..."
    assert d.marker_mismatch_fixed


def test_failed_marker_keeps_an_existing_error_msg() -> None:
    d = decide(row("failed", error_msg="worker said so"), evidence(has_failed=True, error_text="Error: other"))
    assert d.row.error_msg == "worker said so"


def test_failed_marker_beside_completed_row_is_a_conflict_and_fails_it() -> None:
    ev = with_object(has_failed=True, failed_at=ago(50))
    d = decide(row("completed", gen_object_path=OBJ), ev)
    assert d.row.status is Status.FAILED
    assert "failed_beside_completed" in kinds(d)
    assert all(c.resolved for c in d.conflicts)


def test_completed_and_failed_markers_with_object_complete() -> None:
    ev = with_object(
        has_completed=True, completed_at=ago(60), has_failed=True, failed_at=ago(90), error_text="Error: x"
    )
    d = decide(row("enqueued"), ev)
    assert d.row.status is Status.COMPLETED
    assert "completed_and_failed_markers" in kinds(d)
    assert d.row.error_msg == ""  # a completed job never takes a leftover error.txt


def test_fresh_heartbeat_is_running() -> None:
    d = decide(row("enqueued"), evidence(has_inprogress=True, inprogress_at=ago(30)))
    assert d.row.status is Status.RUNNING
    assert "2026-03-01T11:59:30+00:00" in d.row.notes


@pytest.mark.parametrize(
    ("policy", "expected"),
    [(StalePolicy.REQUEUE, Status.ENQUEUED), (StalePolicy.FAIL, Status.FAILED), (StalePolicy.KEEP, Status.RUNNING)],
)
def test_stale_heartbeat_policies(policy: StalePolicy, expected: Status) -> None:
    original = row("running", worker_host="gpu-1")
    d = decide(original, evidence(has_inprogress=True, inprogress_at=ago(601)), Options(stale_policy=policy))
    assert d.row.status is expected
    if policy is StalePolicy.KEEP:
        assert d.row == original
        assert d.row.to_cells() == original.to_cells()
    else:
        assert "stale heartbeat" in d.row.notes
        assert "2026-03-01T11:49:59+00:00" in d.row.notes  # the evidence's time, not the moment of the run
    if policy is StalePolicy.FAIL:
        assert "stale heartbeat" in d.row.error_msg


def test_heartbeat_timeout_is_an_option() -> None:
    ev = evidence(has_inprogress=True, inprogress_at=ago(100))
    assert decide(row("enqueued"), ev, Options(heartbeat_timeout=50)).row.status is Status.ENQUEUED
    assert decide(row("enqueued"), ev, Options(heartbeat_timeout=500)).row.status is Status.RUNNING


@pytest.mark.parametrize("age", [30.0, 6000.0])
def test_completed_row_with_object_and_rerun_stays_completed(age: float) -> None:
    ev = with_object(has_inprogress=True, inprogress_at=ago(age))
    original = row("completed", gen_object_path=OBJ)
    d = decide(original, ev)
    assert d.row.status is Status.COMPLETED
    assert "rerun_beside_completed" in kinds(d)
    assert not d.marker_mismatch_fixed


def test_nothing_on_disk_keeps_the_csv_status() -> None:
    for status in ("enqueued", "running", "failed"):
        original = row(status, notes="as written")
        d = decide(original, evidence())
        assert d.row == original
        assert d.conflicts == ()


def test_completed_row_without_object_is_downgraded() -> None:
    d = decide(row("completed", gen_object_path=OBJ), evidence())
    assert d.row.status is Status.FAILED
    assert d.row.error_msg == DOWNGRADE_MESSAGE
    assert d.row.gen_object_path == OBJ  # never cleared
    assert d.downgraded and d.missing_output
    assert "consolidate: completed -> failed" in d.row.notes


def test_downgrade_appends_to_an_existing_error_once() -> None:
    d = decide(row("completed", error_msg="earlier"), evidence())
    assert d.row.error_msg == f"earlier; {DOWNGRADE_MESSAGE}"


def test_metadata_mismatch_downgrades_a_completed_row_naming_it() -> None:
    mismatch = f"{FOLDER}/metadata.json names job_id 'other'"
    ev = evidence(has_completed=True, completed_at=ago(10), metadata_mismatch=mismatch)
    d = decide(row("completed", gen_object_path=OBJ), ev)
    assert d.row.status is Status.FAILED
    assert mismatch in d.row.error_msg and "downgraded by consolidate" in d.row.error_msg
    assert "metadata_mismatch" in kinds(d)
    assert d.downgraded


def test_no_fix_status_reports_instead_of_changing() -> None:
    d = decide(row("completed"), evidence(), Options(fix_status=False))
    assert d.row.status is Status.COMPLETED
    assert d.row.error_msg == "" and d.row.notes == ""
    assert [(c.kind, c.resolved) for c in d.conflicts] == [("status_not_fixed", False)]
    assert not d.downgraded and not d.marker_mismatch_fixed


# ----------------------------------------------------------------------------------- other fields


def test_times_from_the_worker_log_event_first() -> None:
    end = ago(1000)
    ev = with_object(
        has_completed=True,
        completed_at=ago(10),
        log_event=LogEvent(Status.COMPLETED, end, 42.5),
        earliest_output_at=ago(5000),
    )
    d = decide(row("enqueued"), ev)
    assert d.row.generation_end == end
    assert d.row.generation_start == end - dt.timedelta(seconds=42.5)
    assert d.row.cell("generation_duration_s") == "42.500"
    assert d.row.cell("generation_end") == end.isoformat()
    assert d.row.cell("generation_end").endswith("+00:00")


def test_times_from_markers_and_outputs_without_event() -> None:
    ev = with_object(
        has_completed=True,
        completed_at=ago(100),
        has_inprogress=False,
        earliest_output_at=ago(400),
        object_mtime=ago(200),
    )
    d = decide(row("enqueued"), ev)
    assert d.row.generation_start == ago(400)
    assert d.row.generation_end == ago(100)
    assert d.row.cell("generation_duration_s") == "300.000"


def test_times_of_a_worker_are_kept() -> None:
    original = row(
        "completed",
        gen_object_path=OBJ,
        generation_start="2026-01-01T00:00:00Z",
        generation_end="2026-01-01T00:01:00",
        generation_duration_s="59.9",
    )
    d = decide(original, with_object(has_completed=True, log_event=LogEvent(Status.COMPLETED, ago(5), 3.0)))
    assert d.row.to_cells() == original.to_cells()


def test_start_is_never_after_end() -> None:
    original = row("completed", gen_object_path=OBJ, generation_start=ago(10).isoformat())
    d = decide(original, with_object(has_completed=True, completed_at=ago(500), object_mtime=ago(600)))
    assert d.row.generation_start is not None and d.row.generation_end is not None
    assert d.row.generation_start <= d.row.generation_end


def test_no_times_for_jobs_not_finished() -> None:
    d = decide(row("enqueued"), evidence(has_inprogress=True, inprogress_at=ago(5)))
    assert d.row.generation_start is None and d.row.generation_end is None


def test_previews_recorded_and_cleared() -> None:
    ev = with_object(
        has_completed=True,
        previews=(PREVIEWS[0], "", ""),
        existing_paths=frozenset({OBJ, PREVIEWS[0], PREVIEWS[2]}),
    )
    original = row("completed", gen_object_path=OBJ, preview_2_path=f"{FOLDER}/gone.png", preview_3_path=PREVIEWS[2])
    d = decide(original, ev)
    assert (d.row.preview_1_path, d.row.preview_2_path, d.row.preview_3_path) == (PREVIEWS[0], "", PREVIEWS[2])


def test_windows_paths_become_posix() -> None:
    windows = OBJ.replace("/", "\\")
    d = decide(
        row("completed", gen_object_path=windows, used_image_1_path="dataset\\a\\1.jpg"),
        with_object(has_completed=True),
    )
    assert d.row.gen_object_path == OBJ
    assert d.row.used_image_1_path == "dataset/a/1.jpg"


def test_legacy_object_path_is_honoured() -> None:
    original = row("completed", gen_object_path=LEGACY_OBJ)
    d = decide(original, with_object(LEGACY_OBJ, has_completed=True))
    assert d.row.gen_object_path == LEGACY_OBJ
    assert d.row.status is Status.COMPLETED


def test_manifest_insert_takes_the_job_fields_and_no_created_at() -> None:
    job = Job(job_id=JOB, product_id="00123", variant="oak", algo="trellis", used_n_images="2", image_set_hash="abc")
    d = decide(None, with_object(REF_OBJ, has_completed=True, completed_at=ago(10)), job=job)
    assert d.before is None
    cells = d.row.to_cells()
    assert cells["product_id"] == "00123"
    assert cells["job_id"] == JOB and cells["run_id"] == RUN
    assert cells["used_n_images"] == "2"
    assert cells["image_set_hash"] == "abc"
    assert cells["created_at"] == ""
    assert cells["status"] == "completed"
    assert cells["gen_object_path"] == REF_OBJ


def test_untouched_cells_keep_their_text() -> None:
    original = row(
        "enqueued", used_n_images="3.0", unit_price_usd="0.10", created_at="2026-01-01T00:00:00Z", fscore="0.812300"
    )
    d = decide(original, with_object(has_completed=True))
    cells = d.row.to_cells()
    for column in ("used_n_images", "unit_price_usd", "created_at", "product_id", "job_id", "fscore"):
        assert cells[column] == original.source[column]


def test_nothing_depends_on_the_moment_of_the_run() -> None:
    ev = with_object(has_completed=True, completed_at=ago(100), has_inprogress=True, inprogress_at=ago(5000))
    a = decide(row("enqueued"), ev, now=NOW)
    b = decide(row("enqueued"), ev, now=NOW + dt.timedelta(days=30))
    assert a.row.to_cells() == b.row.to_cells()


# ----------------------------------------------------------------------------------- hypothesis: rows and evidence

TIMES = [ago(s) for s in (5, 200, 900, 4000, 90_000)]
maybe_time = st.one_of(st.none(), st.sampled_from(TIMES))
time_text = st.sampled_from(["", "2026-02-01T10:00:00+00:00", "2026-02-01T10:05:00Z", "2026-02-01 09:00:00"])
OBJECTS = [OBJ, REF_OBJ, LEGACY_OBJ]
PATH_VALUES = ["", OBJ, REF_OBJ, LEGACY_OBJ, OBJ.replace("/", "\\"), f"{FOLDER}/gone.glb"]
PREVIEW_VALUES = ["", *PREVIEWS, f"{FOLDER}/gone.png"]


@st.composite
def rows(draw: st.DrawFn, status: Status | None = None) -> GenerationRow:
    cells = {
        "run_id": RUN,
        "job_id": JOB,
        "status": (status or draw(statuses)).value,
        "product_id": draw(st.sampled_from(["", "00123"])),
        "notes": draw(st.sampled_from(["", "first note"])),
        "error_msg": draw(st.sampled_from(["", "boom", DOWNGRADE_MESSAGE])),
        "worker_host": draw(st.sampled_from(["", "gpu-1", "gpu-2"])),
        "gen_object_path": draw(st.sampled_from(PATH_VALUES)),
        "generation_start": draw(time_text),
        "generation_end": draw(time_text),
        "generation_duration_s": draw(st.sampled_from(["", "12.5", "3"])),
        "used_n_images": draw(st.sampled_from(["", "3", "3.0"])),
        "fscore": draw(st.sampled_from(["", "0.5", "0.50"])),
    }
    for column in PREVIEW_COLUMNS:
        cells[column] = draw(st.sampled_from(PREVIEW_VALUES))
    return GenerationRow.from_cells(cells, line=draw(st.integers(2, 50)))


@st.composite
def evidence_for(draw: st.DrawFn, recorded: tuple[str, str, str] = ("", "", "")) -> Evidence:
    """Evidence as scan_job could produce it: previews only for slots the row does not record, found files exist."""
    has_object = draw(st.booleans())
    object_path = draw(st.sampled_from(OBJECTS)) if has_object else None
    previews = tuple("" if recorded[i] else draw(st.sampled_from(["", PREVIEWS[i]])) for i in range(3))
    existing = set(draw(st.sets(st.sampled_from([*OBJECTS, *PREVIEWS]))))
    existing.update(p for p in previews if p)
    if object_path is not None:
        existing.add(object_path)
    has_event = draw(st.booleans())
    event = (
        LogEvent(
            draw(st.sampled_from([Status.COMPLETED, Status.FAILED])),
            draw(st.sampled_from(TIMES)),
            draw(st.sampled_from([None, 0.0, 30.0, 1e5])),
        )
        if has_event
        else None
    )
    return evidence(
        inprogress_at=draw(maybe_time),
        completed_at=draw(maybe_time),
        failed_at=draw(maybe_time),
        has_inprogress=draw(st.booleans()),
        has_completed=draw(st.booleans()),
        has_failed=draw(st.booleans()),
        object_path=object_path,
        object_size=draw(st.sampled_from([0, 1, 1000])) if has_object else 0,
        object_mtime=draw(st.sampled_from(TIMES)) if has_object else None,
        previews=(previews[0], previews[1], previews[2]),
        existing_paths=frozenset(existing),
        earliest_output_at=draw(maybe_time),
        error_text=draw(st.sampled_from([None, "Error: oom\n\nTraceback:\n..."])),
        # The scan drops everything inside a folder whose metadata.json disagrees.
        metadata_mismatch=(
            draw(st.sampled_from([None, None, None, f"{FOLDER}/metadata.json names job_id 'x'"]))
            if (object_path is None or not object_path.startswith(FOLDER + "/")) and not any(previews)
            else None
        ),
        log_event=event,
    )


options = st.builds(
    Options,
    fix_status=st.booleans(),
    heartbeat_timeout=st.sampled_from([60.0, 600.0, 10_000.0]),
    stale_policy=st.sampled_from(list(StalePolicy)),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[GenerationRow | None, Evidence, Options]:
    current = draw(st.one_of(st.none(), rows()))
    recorded = (
        ("", "", "") if current is None else (current.preview_1_path, current.preview_2_path, current.preview_3_path)
    )
    return current, draw(evidence_for(recorded)), draw(options)


@PROPERTY_SETTINGS
@given(cases())
def test_reconciling_twice_equals_reconciling_once(case: tuple[GenerationRow | None, Evidence, Options]) -> None:
    current, ev, opts = case
    first = decide(current, ev, opts)
    second = decide(first.row, ev, opts)
    assert second.row == first.row
    assert second.row.to_cells() == first.row.to_cells()
    assert not second.marker_mismatch_fixed and not second.downgraded


@pytest.mark.parametrize("age", [30.0, 6000.0])
def test_downgrade_beside_a_heartbeat_is_idempotent(age: float) -> None:
    ev = evidence(has_inprogress=True, inprogress_at=ago(age))
    first = decide(row("completed"), ev)
    second = decide(first.row, ev)
    assert second.row.to_cells() == first.row.to_cells()


@PROPERTY_SETTINGS
@given(cases())
def test_status_rules_hold(case: tuple[GenerationRow | None, Evidence, Options]) -> None:
    current, ev, opts = case
    d = decide(current, ev, opts)
    before = current.status if current is not None else Status.ENQUEUED
    after = d.row.status
    if not opts.fix_status:
        assert after is before
        if d.conflicts and any(not c.resolved for c in d.conflicts):
            assert [c.kind for c in d.conflicts if not c.resolved] == ["status_not_fixed"]
        return
    # completed never becomes running or enqueued
    if before is Status.COMPLETED:
        assert after in (Status.COMPLETED, Status.FAILED)
    # never a status the evidence does not support
    if after is Status.COMPLETED and before is not Status.COMPLETED:
        assert ("completed" in ev.markers) and ev.has_object
    if after is Status.COMPLETED:
        assert ev.has_object
    if after is Status.RUNNING and before is not Status.RUNNING:
        assert ("inprogress" in ev.markers) and ev.inprogress_at is not None
    if after is not before:
        assert f"consolidate: {before} -> {after}: " in d.row.notes
    assert d.downgraded == (before is Status.COMPLETED and after is Status.FAILED and not (ev.has_object))
    # a completed job never takes its error from error.txt
    if after is Status.COMPLETED:
        assert d.row.error_msg == (current.error_msg if current is not None else "")
    # unknown columns and identifiers are never touched
    if current is not None:
        assert d.row.extra == current.extra
        assert d.row.cell("job_id") == JOB and d.row.cell("product_id") == current.cell("product_id")
        if current.gen_object_path:
            assert d.row.gen_object_path  # never cleared
    # timestamps consistent
    if (
        d.row.generation_start
        and d.row.generation_end
        and not (current and current.generation_start and current.generation_end)
    ):
        assert d.row.generation_start <= d.row.generation_end
    if d.row.status not in (Status.COMPLETED, Status.FAILED) and current is not None:
        assert d.row.generation_start == current.generation_start
        assert d.row.generation_end == current.generation_end
    # every path written is workspace-relative POSIX
    for column in PATH_COLUMNS:
        assert "\\" not in d.row.cell(column)


@PROPERTY_SETTINGS
@given(cases(), st.sampled_from([1.0, 3600.0, 86_400.0 * 30]))
def test_row_does_not_depend_on_now_beyond_heartbeats(
    case: tuple[GenerationRow | None, Evidence, Options], shift: float
) -> None:
    current, ev, opts = case
    later = NOW + dt.timedelta(seconds=shift)
    ev = attrs.evolve(ev, markers=ev.markers - {"inprogress"})  # only heartbeats may depend on the moment
    a = decide(current, ev, opts, now=NOW)
    b = decide(current, ev, opts, now=later)
    assert a.row.to_cells() == b.row.to_cells()


# ----------------------------------------------------------------------------------- merge_duplicates


def test_merge_completed_and_running_rows() -> None:
    done = row("completed", gen_object_path=OBJ, error_msg="")
    running = row("running", worker_host="gpu-7", worker_user="ana", worker_gpu="A100", error_msg="stale error")
    running = attrs.evolve(running, line=9)
    merged, conflict = merge_duplicates([running, done], with_object().existing_paths)
    assert merged.status is Status.COMPLETED
    assert (merged.worker_host, merged.worker_user, merged.worker_gpu) == ("gpu-7", "ana", "A100")
    assert merged.gen_object_path == OBJ
    assert merged.error_msg == ""  # from the winner only
    assert merged.line == running.line  # written where the first stood
    assert conflict.kind == "duplicate_rows" and conflict.resolved
    assert "winner line 2" in conflict.detail


def test_merge_prefers_an_existing_path() -> None:
    a = row("failed", gen_object_path=f"{FOLDER}/gone.glb")
    b = attrs.evolve(row("running", gen_object_path=LEGACY_OBJ), line=3)
    merged, _ = merge_duplicates([a, b], frozenset({LEGACY_OBJ}))
    assert merged.status is Status.FAILED
    assert merged.gen_object_path == LEGACY_OBJ


def test_merge_tie_goes_to_the_first_row() -> None:
    a = row("failed", error_msg="first")
    b = attrs.evolve(row("failed", error_msg="second"), line=3)
    merged, _ = merge_duplicates([a, b], frozenset())
    assert merged.error_msg == "first"


@st.composite
def duplicate_groups(draw: st.DrawFn) -> list[GenerationRow]:
    group = draw(st.lists(rows(), min_size=2, max_size=4))
    return [attrs.evolve(r, line=i + 2) for i, r in enumerate(group)]


def _cell(r: GenerationRow, column: str) -> str:
    return r.source.get(column, "")


@MERGE_SETTINGS
@given(duplicate_groups(), st.sets(st.sampled_from([*OBJECTS, *PREVIEWS])))
def test_merge_keeps_every_non_empty_cell_but_a_losers_error(group: list[GenerationRow], existing: set[str]) -> None:
    ev = evidence(existing_paths=frozenset(existing))
    merged, conflict = merge_duplicates(group, ev.existing_paths)
    winner_status = functools.reduce(Status.combine, (r.status for r in group))
    assert merged.status is winner_status
    winner = next(r for r in group if r.status is winner_status)  # the first of the highest
    cells = merged.to_cells()
    columns: list[str] = [*GENERATIONS_COLUMNS, "fscore"]
    for column in columns:
        values = [_cell(r, column) for r in group]
        if column == "error_msg":
            assert cells[column] == _cell(winner, column)
            continue
        if any(values):
            assert cells[column], column
            if column in TYPED_COLUMNS:  # its text: see test_merge_keeps_the_text_of_a_typed_cell_from_a_loser
                assert getattr(merged, column) in [getattr(r, column) for r in group], column
            else:
                assert cells[column] in values, column
        else:
            assert cells[column] == ""
        if column in PATH_COLUMNS and any(v.replace("\\", "/") in existing for v in values if v):
            assert cells[column].replace("\\", "/") in existing, column
        if _cell(winner, column) and column not in PATH_COLUMNS:
            if column == "fscore":
                assert cells[column] == _cell(winner, column)
            else:
                assert getattr(merged, column) == getattr(winner, column), column
    assert conflict.job_id == JOB
    assert merged.line == group[0].line


def test_merge_keeps_the_text_of_a_typed_cell_from_a_loser() -> None:
    first = row("completed", gen_object_path=OBJ)
    other = attrs.evolve(
        row("running", used_n_images="3.0", generation_start="2026-02-01T10:05:00Z", unit_price_usd="0.10"), line=7
    )
    merged, _ = merge_duplicates([first, other], with_object().existing_paths)
    cells = merged.to_cells()
    assert (cells["used_n_images"], cells["generation_start"], cells["unit_price_usd"]) == (
        "3.0",
        "2026-02-01T10:05:00Z",
        "0.10",
    )


@MERGE_SETTINGS
@given(duplicate_groups())
def test_merge_of_identical_rows_is_the_row(group: list[GenerationRow]) -> None:
    first = group[0]
    same = [first, *(attrs.evolve(first, line=i + 3) for i in range(len(group) - 1))]
    merged, _ = merge_duplicates(same, frozenset())
    assert merged.to_cells() == first.to_cells()


def _source(r: GenerationRow) -> Mapping[str, str]:
    return r.source


@MERGE_SETTINGS
@given(duplicate_groups(), st.permutations(range(4)))
def test_merge_status_is_order_independent(group: list[GenerationRow], order: list[int]) -> None:
    shuffled = [group[i] for i in order if i < len(group)]
    a, _ = merge_duplicates(group, frozenset())
    b, _ = merge_duplicates(shuffled, frozenset())
    assert a.status is b.status
    assert all(_source(r) for r in group)
