"""Integration tests of the consolidate service on real workspaces (tests/workspace_builder.py)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from archi3d import Summary
from archi3d.columns import GENERATIONS_COLUMNS
from archi3d.errors import InputError, InvalidIdError, StrictConflictError, TableError, UnknownRunError
from archi3d.model import Status
from archi3d.rules import DOWNGRADE_MESSAGE, StalePolicy
from workspace_builder import (
    BOM,
    GLB_HASH,
    NOW,
    OTHER_RUN,
    PNG,
    RUN,
    TABLE_COLUMNS,
    ago,
    check_identity,
    counters,
    csv_path,
    encode_csv,
    error_txt,
    error_txt_text,
    gen_row,
    iso,
    lock_path,
    manifest_job,
    marker,
    metadata,
    metrics_records,
    one_row,
    output,
    reference_object_name,
    rel_output,
    rows_of,
    run,
    run_dir,
    snapshot,
    state_file,
    table_bytes,
    table_rows,
    worker_event,
    workspace_file,
    write_manifest,
    write_table,
    write_table_bytes,
)


def assert_idempotent(ws: Path, **options: Any) -> Summary:
    """A second run with nothing changed on disk changes nothing and says so."""
    before = table_bytes(ws)
    again = run(ws, **options)
    assert again.upsert_updated == 0
    assert again.upsert_inserted == 0
    assert again.unchanged == again.considered
    assert dict(again.status_histogram_before) == dict(again.status_histogram_after)
    assert not again.written
    assert table_bytes(ws) == before
    return again


# ----------------------------------------------------------------------------------- the five Phase-4 scenarios


def test_happy_path(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1", "j2", "j3"])
    write_table(ws, [gen_row("j1", "completed"), gen_row("j2", "completed"), gen_row("j3", "failed")])
    for job in ("j1", "j2"):
        marker(ws, job, "completed", ago(3000))
        output(ws, job, mtime=ago(3100))
    output(ws, "j1", "preview_1.png", PNG, mtime=ago(3050))
    marker(ws, "j3", "failed", ago(2000))
    error_txt(ws, "j3", "CUDA out of memory")

    summary = run(ws)

    assert [r["status"] for r in table_rows(ws)] == ["completed", "completed", "failed"]
    j1, j2, j3 = (one_row(ws, j) for j in ("j1", "j2", "j3"))
    assert j1["gen_object_path"] == rel_output("j1")
    assert j1["preview_1_path"] == rel_output("j1", "preview_1.png")
    assert j2["gen_object_path"] == rel_output("j2")
    assert j2["preview_1_path"] == ""
    assert j3["error_msg"] == error_txt_text("CUDA out of memory")
    assert j3["gen_object_path"] == ""
    assert j1["generation_start"] == iso(ago(3100)) and j1["generation_end"] == iso(ago(3000))
    assert j1["generation_duration_s"] == "100.000"
    assert j1["notes"] == "" and j1["error_msg"] == ""
    assert counters(summary) == {
        "considered": 3,
        "upsert_inserted": 0,
        "upsert_updated": 3,
        "unchanged": 0,
        "duplicate_rows_merged": 0,
        "conflicts_resolved": 0,
        "marker_mismatches_fixed": 0,
        "downgraded_missing_output": 0,
        "missing_outputs": 0,
        "invalid_previews": 0,
        "not_in_manifest": 0,
        "orphans": 0,
    }
    assert summary.written
    assert dict(summary.status_histogram_before) == {"completed": 2, "failed": 1}
    assert dict(summary.status_histogram_after) == {"completed": 2, "failed": 1}
    assert_idempotent(ws)


def test_completed_row_without_object_is_downgraded(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1", "j2"])
    write_table(ws, [gen_row("j1", "completed", gen_object_path=rel_output("j1")), gen_row("j2", "enqueued")])
    run_dir(ws)

    summary = run(ws)

    row = one_row(ws, "j1")
    assert row["status"] == "failed"
    assert row["error_msg"] == "missing generated.glb; downgraded by consolidate" == DOWNGRADE_MESSAGE
    assert row["gen_object_path"] == rel_output("j1")  # kept, to show what was expected
    assert "completed -> failed" in row["notes"]
    assert summary.downgraded_missing_output == 1
    assert summary.missing_outputs == 1
    assert summary.upsert_updated == 1 and summary.unchanged == 1
    assert dict(summary.status_histogram_after) == {"enqueued": 1, "failed": 1}
    assert_idempotent(ws)


def test_empty_object_is_missing(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "completed")])
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1", data=b"")
    summary = run(ws)
    assert one_row(ws, "j1")["status"] == "failed"
    assert one_row(ws, "j1")["error_msg"] == DOWNGRADE_MESSAGE
    assert summary.downgraded_missing_output == 1
    assert "completed_without_object" in [c.kind for c in summary.conflicts]


def test_merge_of_completed_and_running_rows(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    running = gen_row(
        "j1", "running", worker_host="gpu-node-3", worker_user="ana", worker_gpu="A100", worker_commit="abc123"
    )
    done = gen_row("j1", "completed", gen_object_path=rel_output("j1"), generation_start=iso(ago(500)))
    other = gen_row("x9", "enqueued", run_id=OTHER_RUN)
    original = write_table(ws, [running, other, done])
    marker(ws, "j1", "completed", ago(400))
    output(ws, "j1", mtime=ago(450))

    summary = run(ws)

    rows = rows_of(ws, "j1")
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "completed"
    assert (row["worker_host"], row["worker_user"], row["worker_gpu"], row["worker_commit"]) == (
        "gpu-node-3",
        "ana",
        "A100",
        "abc123",
    )
    assert row["gen_object_path"] == rel_output("j1")
    assert row["generation_start"] == iso(ago(500))
    assert [r["job_id"] for r in table_rows(ws)] == ["j1", "x9"]  # written where the first stood
    assert summary.conflicts_resolved == 1
    assert [c.kind for c in summary.conflicts] == ["duplicate_rows"]
    assert summary.duplicate_rows_merged == 1
    assert summary.upsert_updated == 1
    assert summary.considered == 2
    check_identity(summary)
    assert dict(summary.status_histogram_before) == {"completed": 1, "running": 1}
    assert dict(summary.status_histogram_after) == {"completed": 1}
    other_line = encode_csv([other], bom=False).split(b"\n", 1)[1]
    assert other_line in original and other_line in table_bytes(ws)
    assert_idempotent(ws)


def test_merge_of_identical_rows_counts_as_unchanged(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    row = gen_row("j1", "enqueued", notes="same")
    write_table(ws, [row, row])
    run_dir(ws)
    summary = run(ws)
    assert len(rows_of(ws, "j1")) == 1
    assert (summary.unchanged, summary.upsert_updated, summary.duplicate_rows_merged) == (1, 0, 1)
    assert summary.written
    check_identity(summary)


@pytest.mark.parametrize(
    ("policy", "status"),
    [(StalePolicy.REQUEUE, "enqueued"), (StalePolicy.FAIL, "failed"), (StalePolicy.KEEP, "running")],
)
def test_stale_heartbeat_policies(tmp_path: Path, policy: StalePolicy, status: str) -> None:
    ws = tmp_path
    write_manifest(ws, ["stale", "fresh"])
    write_table(ws, [gen_row("stale", "running", worker_host="gpu-1"), gen_row("fresh", "enqueued")])
    marker(ws, "stale", "inprogress", ago(601))
    marker(ws, "fresh", "inprogress", ago(30))

    summary = run(ws, stale_policy=policy)

    stale, fresh = one_row(ws, "stale"), one_row(ws, "fresh")
    assert stale["status"] == status
    assert fresh["status"] == "running"
    assert stale["worker_host"] == "gpu-1"
    if policy is StalePolicy.KEEP:
        original = gen_row("stale", "running", worker_host="gpu-1")
        assert stale == {c: original.get(c, "") for c in TABLE_COLUMNS}
        assert stale["notes"] == "" and stale["error_msg"] == ""
        assert summary.marker_mismatches_fixed == 1
    else:
        assert "stale heartbeat" in stale["notes"] and iso(ago(601)) in stale["notes"]
        assert summary.marker_mismatches_fixed == 2
    if policy is StalePolicy.FAIL:
        assert "stale heartbeat" in stale["error_msg"]
    else:
        assert stale["error_msg"] == ""
    assert_idempotent(ws, stale_policy=policy)


def test_dry_run_writes_nothing_but_the_log_record(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1", "j2", "j3", "new"])
    write_table(
        ws,
        [
            gen_row("j1", "enqueued"),
            gen_row("j2", "completed"),
            gen_row("j3", "running"),
            gen_row("j3", "enqueued", worker_host="h"),
        ],
    )
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1")
    marker(ws, "new", "failed", ago(50))
    before = snapshot(ws)

    dry = run(ws, dry_run=True)

    after = snapshot(ws)
    assert {k: v for k, v in after.items() if k not in ("logs", "logs/metrics.log")} == before
    assert set(after) - set(before) <= {"logs", "logs/metrics.log"}
    assert not lock_path(ws).exists()
    records = metrics_records(ws)
    assert len(records) == 1
    record = records[0]
    assert record["event"] == "consolidate" and record["dry_run"] is True and record["written"] is False
    assert record["run_id"] == RUN
    projected = counters(dry)
    assert projected["upsert_updated"] == 3 and projected["upsert_inserted"] == 1
    assert projected["duplicate_rows_merged"] == 1 and projected["downgraded_missing_output"] == 1
    for name, value in projected.items():
        assert record[name] == value

    real = run(ws)
    assert counters(real) == projected
    assert dict(real.status_histogram_after) == dict(dry.status_histogram_after) == record["status_histogram_after"]
    assert table_bytes(ws) != before["tables/generations.csv"]


def test_dry_run_creates_no_logs_folder_beyond_the_record(tmp_path: Path) -> None:
    ws = tmp_path
    run_dir(ws)
    write_manifest(ws, ["j1"])
    before = snapshot(ws)
    summary = run(ws, dry_run=True)
    assert summary.upsert_inserted == 1
    assert set(snapshot(ws)) - set(before) == {"logs", "logs/metrics.log"}
    assert not (ws / "tables").exists()


# ----------------------------------------------------------------------------------- idempotency


def test_idempotent_on_a_busy_run(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["a", "b", "c", "d", "e", "f", "m1", "m2"])
    write_table(
        ws,
        [
            gen_row("a", "enqueued"),
            gen_row("b", "completed", gen_object_path=rel_output("b")),
            gen_row("c", "running", worker_host="h"),
            gen_row("c", "completed"),
            gen_row("d", "failed", gen_object_path="runs\\run-a\\outputs\\d\\generated.glb"),
            gen_row("e", "enqueued"),
            gen_row("f", "completed", gen_object_path=rel_output("f")),
            gen_row("zz", "enqueued"),
            gen_row("o1", "completed", run_id=OTHER_RUN),
        ],
    )
    marker(ws, "a", "completed", ago(100), style="json")
    output(ws, "a", "preview_1.png", PNG)
    output(ws, "a", "preview_2.png", b"")
    output(ws, "a", reference_object_name("pa", "oak", "trellis", "a"))
    marker(ws, "c", "completed", ago(100), style="empty")
    output(ws, "c")
    marker(ws, "d", "failed", ago(100), naive=True)
    error_txt(ws, "d", "", raw=b"x" * 2500)
    output(ws, "d")
    marker(ws, "e", "inprogress", ago(5000))
    marker(ws, "f", "completed", ago(100))
    output(ws, "f")
    marker(ws, "f", "inprogress", ago(20))
    marker(ws, "m1", "completed", ago(100))
    output(ws, "m1", mtime=ago(300))
    output(ws, "orphan")

    first = run(ws)
    check_identity(first)
    assert first.upsert_updated > 0 and first.upsert_inserted == 2
    second = assert_idempotent(ws)
    check_identity(second)
    assert second.considered == first.considered - first.duplicate_rows_merged
    assert dict(second.status_histogram_after) == dict(first.status_histogram_after)
    assert second.orphans == first.orphans == 1
    assert one_row(ws, "d")["error_msg"] == "x" * 2000 + " (truncated; see error.txt)"
    assert one_row(ws, "d")["gen_object_path"] == rel_output("d")


def test_idempotent_when_a_recorded_preview_is_gone(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "completed", gen_object_path=rel_output("j1"), preview_1_path="old/gone.png")])
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1")
    output(ws, "j1", "preview_1.png", PNG)
    run(ws)
    assert one_row(ws, "j1")["preview_1_path"] == rel_output("j1", "preview_1.png")
    assert_idempotent(ws)


def test_idempotent_after_a_downgrade_beside_a_stale_heartbeat(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "completed")])
    marker(ws, "j1", "inprogress", ago(7200))
    run(ws)
    assert one_row(ws, "j1")["status"] == "failed"
    assert_idempotent(ws)


# ----------------------------------------------------------------------------------- the reference worker


def test_crashed_reference_worker(tmp_path: Path) -> None:
    ws = tmp_path
    jobs = {"a1b2c3d4e5f6": "00123", "197260739297": "00777", "12e456789012": "00042", "ffff00001111": "00999"}
    write_manifest(ws, [manifest_job(j, product_id=p, variant="oak", algo="trellis") for j, p in jobs.items()])
    write_table(ws, [gen_row(j, "enqueued", product_id=p, worker_host="gpu-2") for j, p in jobs.items()])
    ok = ("a1b2c3d4e5f6", "197260739297")
    end = {"a1b2c3d4e5f6": ago(4000), "197260739297": ago(3000)}
    duration = {"a1b2c3d4e5f6": 42.25, "197260739297": 301.5}
    for job in ok:
        state_file(ws, f"{job}.lock")
        marker(ws, job, "completed", end[job] + dt.timedelta(milliseconds=3), naive=True)
        output(ws, job, reference_object_name(jobs[job], "oak", "trellis", job), mtime=end[job])
        worker_event(ws, "job_started", job, end[job] - dt.timedelta(seconds=duration[job]))
        worker_event(ws, "job_completed", job, end[job], duration_s=duration[job])
    output(ws, "a1b2c3d4e5f6", "preview_1.png", PNG)
    output(ws, "a1b2c3d4e5f6", "preview_2.png", PNG)
    failed_end = ago(2000)
    marker(ws, "12e456789012", "failed", failed_end - dt.timedelta(seconds=1))
    error_txt(ws, "12e456789012", "mesh extraction produced no faces")
    worker_event(ws, "job_failed", "12e456789012", failed_end)
    worker_event(ws, "job_completed", "x", failed_end, run_id=OTHER_RUN, duration_s=1.0)
    state_file(ws, "ffff00001111.lock")
    state_file(ws, "ffff00001111.completed.tmp")

    summary = run(ws)

    for job in ok:
        row = one_row(ws, job)
        assert row["status"] == "completed"
        assert row["product_id"] == jobs[job]
        assert row["gen_object_path"] == rel_output(job, reference_object_name(jobs[job], "oak", "trellis", job))
        assert row["generation_end"] == iso(end[job])
        assert row["generation_start"] == iso(end[job] - dt.timedelta(seconds=duration[job]))
        assert row["generation_duration_s"] == f"{duration[job]:.3f}"
        assert row["worker_host"] == "gpu-2"
        assert row["error_msg"] == ""
    first = one_row(ws, "a1b2c3d4e5f6")
    assert (first["preview_1_path"], first["preview_2_path"]) == (
        rel_output("a1b2c3d4e5f6", "preview_1.png"),
        rel_output("a1b2c3d4e5f6", "preview_2.png"),
    )
    failed = one_row(ws, "12e456789012")
    assert failed["status"] == "failed"
    assert failed["error_msg"] == error_txt_text("mesh extraction produced no faces")
    assert failed["generation_end"] == iso(failed_end)
    assert failed["generation_start"] <= failed["generation_end"]
    assert failed["generation_start"] == iso(failed_end - dt.timedelta(seconds=1))
    untouched = one_row(ws, "ffff00001111")
    assert untouched["status"] == "enqueued" and untouched["gen_object_path"] == ""
    assert [r["job_id"] for r in table_rows(ws)] == list(jobs)
    assert summary.marker_mismatches_fixed == 3
    assert summary.upsert_updated == 3 and summary.unchanged == 1
    assert summary.orphans == 0
    assert dict(summary.status_histogram_before) == {"enqueued": 4}
    assert dict(summary.status_histogram_after) == {"completed": 2, "enqueued": 1, "failed": 1}
    assert_idempotent(ws)


def test_marker_time_is_read_from_the_marker_not_its_mtime(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1", "j2"])
    write_table(ws, [gen_row("j1", "enqueued"), gen_row("j2", "enqueued")])
    written = marker(ws, "j1", "completed", ago(7200))
    output(ws, "j1", mtime=ago(7300))
    marker(ws, "j2", "completed", ago(5000), style="empty")  # no timestamp inside: its mtime
    output(ws, "j2", mtime=ago(5100))
    os.utime(written, (NOW.timestamp(), NOW.timestamp()))  # a copy that did not keep the mtime
    run(ws)
    assert one_row(ws, "j1")["generation_end"] == iso(ago(7200))
    assert one_row(ws, "j2")["generation_end"] == iso(ago(5000))


# ----------------------------------------------------------------------------------- manifest, orphans, evidence


def test_manifest_only_jobs_are_inserted_and_orphans_reported(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(
        ws,
        [
            manifest_job("j1"),
            manifest_job(
                "m1",
                product_id="00123",
                used_n_images="2",
                used_image_1_path="dataset/00123/a.jpg",
                image_set_hash="h1",
                gt_object_path="dataset/00123/gt.glb",
                product_name='Oslo "chair", oak',
                manufacturer="Møbelfabrikken",
            ),
            manifest_job("m2"),
        ],
    )
    write_table(ws, [gen_row("j1", "enqueued"), gen_row("nm", "running")])
    marker(ws, "nm", "completed", ago(100))  # not in the manifest: still reconciled
    output(ws, "nm")
    marker(ws, "m1", "completed", ago(100))
    output(ws, "m1", mtime=ago(200))
    output(ws, "orphan-out")
    marker(ws, "orphan-marker", "inprogress", ago(10))
    error_txt(ws, "only-error", "x")  # an error.txt alone is no job

    summary = run(ws)

    ids = [r["job_id"] for r in table_rows(ws)]
    assert ids == ["j1", "nm", "m1", "m2"]
    m1 = one_row(ws, "m1")
    assert m1["status"] == "completed"
    assert m1["created_at"] == ""
    assert (m1["product_id"], m1["used_n_images"], m1["used_image_1_path"], m1["image_set_hash"]) == (
        "00123",
        "2",
        "dataset/00123/a.jpg",
        "h1",
    )
    assert (m1["gt_object_path"], m1["product_name"], m1["manufacturer"]) == (
        "dataset/00123/gt.glb",
        'Oslo "chair", oak',
        "Møbelfabrikken",
    )
    assert m1["gen_object_path"] == rel_output("m1")
    assert one_row(ws, "nm")["status"] == "completed"
    m2 = one_row(ws, "m2")
    assert m2["status"] == "enqueued" and m2["created_at"] == "" and m2["run_id"] == RUN
    assert summary.upsert_inserted == 2
    assert summary.not_in_manifest == 1
    assert summary.orphans == 2
    assert [c["job_id"] for c in summary.to_record()["conflicts"] if c["kind"] == "orphan"] == [
        "orphan-marker",
        "orphan-out",
    ]
    assert "orphan" not in "".join(ids)
    assert summary.conflicts_resolved == 0
    check_identity(summary)
    assert_idempotent(ws)


def test_first_run_creates_the_table(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1", "197260739297"])
    summary = run(ws)
    data = table_bytes(ws)
    assert data.startswith(BOM)
    assert [r["job_id"] for r in table_rows(ws)] == ["j1", "197260739297"]
    assert list(table_rows(ws)[0]) == list(GENERATIONS_COLUMNS)
    assert summary.upsert_inserted == 2 and summary.considered == 2


def test_legacy_object_path_is_honoured(tmp_path: Path) -> None:
    ws = tmp_path
    legacy = f"runs/{RUN}/outputs/trellis/x.glb"
    write_manifest(ws, ["j1", "j2"])
    write_table(
        ws,
        [
            gen_row("j1", "completed", gen_object_path=legacy),
            gen_row("j2", "completed", gen_object_path=legacy.replace("/", "\\").replace("x.glb", "y.glb")),
        ],
    )
    workspace_file(ws, legacy)
    workspace_file(ws, legacy.replace("x.glb", "y.glb"))
    output(ws, "j1")  # a generated.glb too: the row's own file wins
    summary = run(ws)
    assert one_row(ws, "j1")["status"] == "completed"
    assert one_row(ws, "j1")["gen_object_path"] == legacy
    assert one_row(ws, "j2")["status"] == "completed"
    assert one_row(ws, "j2")["gen_object_path"] == legacy.replace("x.glb", "y.glb")  # made POSIX
    assert summary.downgraded_missing_output == 0 and summary.missing_outputs == 0
    assert_idempotent(ws)


def test_missing_recorded_object_is_replaced_by_the_found_one(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "completed", gen_object_path="runs/run-a/outputs/trellis/gone.glb")])
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1")
    run(ws)
    assert one_row(ws, "j1")["status"] == "completed"
    assert one_row(ws, "j1")["gen_object_path"] == rel_output("j1")


def test_several_candidate_objects_take_the_newest(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "enqueued")])
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1", "old.glb", mtime=ago(900))
    output(ws, "j1", "new.glb", mtime=ago(200))
    summary = run(ws)
    assert one_row(ws, "j1")["gen_object_path"] == rel_output("j1", "new.glb")
    assert [c.kind for c in summary.conflicts] == ["several_objects"]
    assert summary.conflicts_resolved == 1


def test_leftover_error_txt_is_not_copied_into_a_completed_job(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1", "j2"])
    write_table(ws, [gen_row("j1", "failed"), gen_row("j2", "completed", gen_object_path=rel_output("j2"))])
    marker(ws, "j1", "completed", ago(100))  # a --redo that succeeded
    output(ws, "j1")
    error_txt(ws, "j1", "old failure")
    output(ws, "j2")
    error_txt(ws, "j2", "older failure")
    summary = run(ws)
    for job in ("j1", "j2"):
        assert one_row(ws, job)["status"] == "completed"
        assert one_row(ws, job)["error_msg"] == ""
    assert summary.marker_mismatches_fixed == 1


def test_error_txt_truncation_boundaries(tmp_path: Path) -> None:
    ws = tmp_path
    texts = {
        "ascii2000": "a" * 2000,
        "ascii2001": "a" * 2001,
        "utf8-2000": "é" * 2000,
        "utf8-2001": "é" * 2001,
        "wide2000": "😀" * 2000,
        "wide2001": "😀" * 2001,
    }
    write_manifest(ws, list(texts))
    write_table(ws, [gen_row(j, "failed") for j in texts])
    for job, text in texts.items():
        error_txt(ws, job, "", raw=text.encode("utf-8"))
    run(ws)
    for job, text in texts.items():
        expected = text if len(text) <= 2000 else text[:2000] + " (truncated; see error.txt)"
        assert one_row(ws, job)["error_msg"] == expected, job


def test_insert_into_a_table_without_a_final_newline(tmp_path: Path) -> None:
    ws = tmp_path
    data = encode_csv([gen_row("o1", "completed", run_id=OTHER_RUN)], newline="\r\n")
    write_table_bytes(ws, data[:-2])
    write_manifest(ws, ["m1"])
    run(ws)
    new = table_bytes(ws)
    assert new.startswith(data)
    assert new.endswith(b"\r\n") and new.count(b"\r\n") == 3
    assert [r["job_id"] for r in table_rows(ws)] == ["o1", "m1"]


def test_error_txt_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "running")])
    marker(ws, "j1", "failed", ago(100))
    error_txt(ws, "j1", "", raw=b"Error: bad \xff byte\n")
    run(ws)
    assert one_row(ws, "j1")["error_msg"] == "Error: bad \ufffd byte\n"


def test_metadata_mismatch_is_a_conflict_and_downgrades(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1", "j2"])
    write_table(ws, [gen_row("j1", "completed", gen_object_path=rel_output("j1")), gen_row("j2", "enqueued")])
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1")
    output(ws, "j1", "preview_1.png", PNG)
    metadata(ws, "j1", {"run_id": RUN, "job_id": "somebody-else"})
    marker(ws, "j2", "completed", ago(100))
    output(ws, "j2")
    metadata(ws, "j2", {"run_id": RUN, "job_id": "j2"})  # agrees: evidence as usual

    summary = run(ws)

    row = one_row(ws, "j1")
    assert row["status"] == "failed"
    assert "somebody-else" in row["error_msg"] and "metadata.json" in row["error_msg"]
    assert "downgraded by consolidate" in row["error_msg"]
    assert row["gen_object_path"] == rel_output("j1")
    assert row["preview_1_path"] == ""
    assert "metadata_mismatch" in [c.kind for c in summary.conflicts]
    assert summary.downgraded_missing_output == 1
    assert one_row(ws, "j2")["status"] == "completed"
    assert_idempotent(ws)


def test_metadata_mismatch_does_not_disqualify_an_object_outside_the_folder(tmp_path: Path) -> None:
    ws = tmp_path
    legacy = f"runs/{RUN}/outputs/trellis/x.glb"
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "completed", gen_object_path=legacy)])
    workspace_file(ws, legacy)
    metadata(ws, "j1", {"job_id": "somebody-else"})
    run(ws)
    assert one_row(ws, "j1")["status"] == "completed"


def test_invalid_previews_are_counted_not_recorded(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "enqueued")])
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1")
    output(ws, "j1", "preview_1.png", b"")
    output(ws, "j1", "preview_2.png", b"\xff\xd8\xff\xe0 a jpeg")
    output(ws, "j1", "preview_3.png", PNG)
    summary = run(ws)
    row = one_row(ws, "j1")
    assert (row["preview_1_path"], row["preview_2_path"], row["preview_3_path"]) == (
        "",
        "",
        rel_output("j1", "preview_3.png"),
    )
    assert summary.invalid_previews == 2


def test_recorded_preview_that_vanished_is_cleared(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    preview = rel_output("j1", "preview_1.png")
    write_table(ws, [gen_row("j1", "completed", gen_object_path=rel_output("j1"), preview_1_path=preview)])
    output(ws, "j1")
    summary = run(ws)
    assert one_row(ws, "j1")["preview_1_path"] == ""
    assert one_row(ws, "j1")["status"] == "completed"
    assert summary.upsert_updated == 1


def test_completed_row_with_rerun_under_way_stays_completed(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "completed", gen_object_path=rel_output("j1"))])
    output(ws, "j1")
    marker(ws, "j1", "inprogress", ago(10))
    summary = run(ws)
    assert one_row(ws, "j1")["status"] == "completed"
    assert [c.kind for c in summary.conflicts] == ["rerun_beside_completed"]


def test_failed_marker_beside_completed_row(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "completed", gen_object_path=rel_output("j1"))])
    output(ws, "j1")
    marker(ws, "j1", "failed", ago(10))
    error_txt(ws, "j1", "second attempt failed")
    summary = run(ws)
    row = one_row(ws, "j1")
    assert row["status"] == "failed"
    assert row["error_msg"] == error_txt_text("second attempt failed")
    assert "failed_beside_completed" in [c.kind for c in summary.conflicts]
    assert summary.conflicts_resolved == 1


def test_no_fix_status_reports_without_changing(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1", "j2"])
    write_table(ws, [gen_row("j1", "completed"), gen_row("j2", "enqueued")])
    marker(ws, "j2", "completed", ago(100))
    output(ws, "j2")
    summary = run(ws, fix_status=False)
    assert one_row(ws, "j1")["status"] == "completed"
    assert one_row(ws, "j2")["status"] == "enqueued"
    not_fixed = [c for c in summary.conflicts if c.kind == "status_not_fixed"]
    assert sorted(c.job_id for c in not_fixed) == ["j1", "j2"]
    assert summary.conflicts_resolved == 0
    assert summary.downgraded_missing_output == 0 and summary.marker_mismatches_fixed == 0
    assert dict(summary.status_histogram_after) == dict(summary.status_histogram_before)


# ----------------------------------------------------------------------------------- selection


def _selection_workspace(ws: Path) -> bytes:
    write_manifest(ws, ["e1", "r1", "c1", "f1", "d1", "m1"])
    data = write_table(
        ws,
        [
            gen_row("e1", "enqueued"),
            gen_row("r1", "running"),
            gen_row("c1", "completed"),
            gen_row("d1", "enqueued", worker_host="h"),
            gen_row("f1", "failed"),
            gen_row("d1", "completed", gen_object_path=rel_output("d1")),
        ],
    )
    for job in ("e1", "r1", "d1", "m1"):
        marker(ws, job, "completed", ago(100))
        output(ws, job)
    marker(ws, "f1", "failed", ago(100))
    error_txt(ws, "f1", "boom")
    return data


def _records(data: bytes) -> list[bytes]:
    return data.split(b"\n")


@pytest.mark.parametrize(
    ("only", "selected"),
    [
        (frozenset({Status.COMPLETED}), {"c1", "d1"}),
        (frozenset({Status.ENQUEUED}), {"e1", "d1", "m1"}),
        (frozenset({Status.RUNNING, Status.FAILED}), {"r1", "f1"}),
    ],
)
def test_only_status_never_touches_other_rows(tmp_path: Path, only: frozenset[Status], selected: set[str]) -> None:
    ws = tmp_path
    original = _selection_workspace(ws)
    summary = run(ws, only_status=only)
    rows = table_rows(ws)
    by_job: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_job.setdefault(r["job_id"], []).append(r)
    new = table_bytes(ws)
    for job in {"e1", "r1", "c1", "f1", "d1"} - selected:
        for line in _records(original):
            if line.startswith(b"\xef\xbb\xbf"):
                continue
            if f",{job},".encode() in line:
                assert line in new, job
    for job in {"e1", "r1", "m1"} & selected:
        assert by_job[job][0]["status"] == "completed"
    if "d1" in selected:
        assert len(by_job["d1"]) == 1 and by_job["d1"][0]["status"] == "completed"
        assert by_job["d1"][0]["worker_host"] == "h"
        assert summary.duplicate_rows_merged == 1
    else:
        assert len(by_job["d1"]) == 2
    if "c1" in selected:
        assert by_job["c1"][0]["status"] == "failed"
    if "f1" in selected:
        assert by_job["f1"][0]["error_msg"] == error_txt_text("boom")
    assert ("m1" in by_job) == ("m1" in selected)
    expected = sum(2 if j == "d1" else 1 for j in selected)
    assert summary.considered == expected
    check_identity(summary)
    assert sum(summary.status_histogram_before.values()) == expected - ("m1" in selected)
    assert new.split(b"\n", 1)[0] == original.split(b"\n", 1)[0]


@pytest.mark.parametrize("max_rows", [0, 3, 4, 6])
def test_max_rows_never_touches_other_rows(tmp_path: Path, max_rows: int) -> None:
    ws = tmp_path
    original = _selection_workspace(ws)
    order = ["e1", "r1", "c1", "d1", "f1", "m1"]  # CSV jobs in file order, then manifest-only ones
    chosen = set(order[:max_rows])
    summary = run(ws, max_rows=max_rows)
    new = table_bytes(ws)
    for job in set(order) - chosen - {"m1"}:
        lines = [line for line in _records(original) if f",{job},".encode() in line]
        assert lines and all(line in new for line in lines), job
    assert summary.considered == sum(2 if j == "d1" else 1 for j in chosen)
    assert ("m1" in {r["job_id"] for r in table_rows(ws)}) == ("m1" in chosen)
    assert (len(rows_of(ws, "d1")) == 1) == ("d1" in chosen)
    check_identity(summary)
    if max_rows == 0:
        assert new == original and not summary.written


# ----------------------------------------------------------------------------------- bytes of other rows


def test_other_rows_keep_their_bytes_bom_and_crlf(tmp_path: Path) -> None:
    ws = tmp_path
    header = ",".join(TABLE_COLUMNS).encode() + b"\r\n"

    def record(cells: dict[str, str]) -> bytes:
        return encode_csv([cells], newline="\r\n", bom=False).split(b"\r\n", 1)[1]

    hand_written = ["" for _ in TABLE_COLUMNS]  # cells quoted where no quotes are needed stay as written
    for column, cell in {
        "product_id": '"00007"',
        "variant": "oak",
        "run_id": OTHER_RUN,
        "job_id": "ab12",
        "used_n_images": '"3.0"',
        "status": "enqueued",
        "fscore": "1e-3",
    }.items():
        hand_written[TABLE_COLUMNS.index(column)] = cell
    others = [
        record(
            gen_row(
                "197260739297",
                "completed",
                run_id=OTHER_RUN,
                product_id="00123",
                fscore="0.812300",
                generation_duration_s="12.50",
                created_at="2026-01-01T00:00:00Z",
                notes='said "hello", left',
                description="two\nlines",
            )
        ),
        record(
            gen_row(
                "12e456789012",
                "failed",
                run_id=OTHER_RUN,
                product_id="00042",
                error_msg="bad\r\nworse",
                unit_price_usd="0.10",
                fscore_status="done",
            )
        ),
        ",".join(hand_written).encode() + b"\r\n",
    ]
    assert b'"two\nlines"' in others[0] and b'"said ""hello"", left"' in others[0]
    mine = [
        record(
            gen_row(
                "197260739297",
                "enqueued",
                product_id="00123",
                fscore="0.5",
                unit_price_usd="0.10",
                used_n_images="3",
                created_at="2026-01-02T03:04:05Z",
                notes="line1\r\nline2",
            )
        ),
        record(gen_row("12e456789012", "enqueued", product_id="00042")),
    ]
    data = BOM + header + others[0] + mine[0] + b"\r\n" + others[1] + mine[1] + others[2]
    write_table_bytes(ws, data)
    write_manifest(ws, ["197260739297", "12e456789012", "m1"])
    marker(ws, "197260739297", "completed", ago(100))
    output(ws, "197260739297")
    marker(ws, "12e456789012", "failed", ago(100))

    summary = run(ws)

    new = table_bytes(ws)
    assert summary.upsert_updated == 2 and summary.upsert_inserted == 1 and summary.written
    assert new.startswith(BOM + header)
    positions = [new.index(o) for o in others]
    assert positions == sorted(positions)
    assert b"\r\n\r\n" in new  # the blank line between records is kept
    rest = new
    for o in others:
        rest = rest.replace(o, b"")
    assert b"\n" not in rest.replace(b"\r\n", b"")  # every line of the rewritten rows ends with CRLF
    mine_now = one_row(ws, "197260739297")
    assert mine_now["status"] == "completed"
    assert (mine_now["product_id"], mine_now["fscore"], mine_now["unit_price_usd"], mine_now["used_n_images"]) == (
        "00123",
        "0.5",
        "0.10",
        "3",
    )
    assert mine_now["created_at"] == "2026-01-02T03:04:05Z"
    assert mine_now["notes"].startswith("line1\r\nline2; consolidate: enqueued -> completed")
    assert mine_now["job_id"] == "197260739297"
    assert one_row(ws, "12e456789012")["status"] == "failed"
    assert new.endswith(b"\r\n")
    ids = [r["job_id"] for r in table_rows(ws)]
    assert ids == ["197260739297", "197260739297", "12e456789012", "12e456789012", "ab12", "m1"]
    assert_idempotent(ws)


def test_new_columns_go_at_the_tail(tmp_path: Path) -> None:
    ws = tmp_path
    columns = [c for c in GENERATIONS_COLUMNS if not c.startswith("preview_")] + ["fscore"]
    other = gen_row("o1", "completed", run_id=OTHER_RUN, fscore="0.9", notes='a "b", c')
    data = write_table(ws, [other, gen_row("j1", "enqueued")], columns)
    write_manifest(ws, ["j1"])
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1")
    output(ws, "j1", "preview_1.png", PNG)
    run(ws)
    new = table_bytes(ws)
    header = new.split(b"\n", 1)[0]
    assert header == data.split(b"\n", 1)[0] + b",preview_1_path"
    other_line = data.split(b"\n")[1]
    assert other_line + b",\n" in new
    assert one_row(ws, "j1")["preview_1_path"] == rel_output("j1", "preview_1.png")
    assert one_row(ws, "o1", OTHER_RUN)["fscore"] == "0.9"
    assert list(table_rows(ws)[0])[-2:] == ["fscore", "preview_1_path"]


# ----------------------------------------------------------------------------------- no lost update


_WRITER = """
import sys
from pathlib import Path

import pandas as pd

from archi3d.upsert import update_csv_atomic

rows = [
    {"run_id": "run-a", "job_id": "w1", "status": "completed", "worker_host": "writer-host", "notes": "by the writer"},
    {"run_id": "run-a", "job_id": "w2", "fscore": "0.77"},
    {"run_id": "run-a", "job_id": "w3", "status": "enqueued", "product_id": "00009"},
    {"run_id": "run-a", "job_id": "w4", "status": "failed", "error_msg": "writer error"},
]
for row in rows:  # one upsert per row: each sets only its own columns
    print(update_csv_atomic(Path(sys.argv[1]), pd.DataFrame([row], dtype="str"), ["run_id", "job_id"], lock_timeout=20))
"""


def test_a_writer_upserting_during_the_scan_loses_nothing(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["w1", "w2", "w4", "c1"])
    write_table(
        ws,
        [
            gen_row("w1", "enqueued"),
            gen_row("w2", "enqueued"),
            gen_row("c1", "enqueued"),
            gen_row("o1", "enqueued", run_id=OTHER_RUN),
        ],
    )
    for job in ("w1", "c1"):
        marker(ws, job, "completed", ago(100))
        output(ws, job)
    calls: list[tuple[int, int]] = []

    def progress(phase: str, done: int, total: int) -> None:
        if phase != "deciding jobs":  # the table has been read: write to it before consolidate does
            return
        calls.append((done, total))
        if len(calls) == 1:
            result = subprocess.run(
                [sys.executable, "-c", _WRITER, str(csv_path(ws))], capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout.split() == ["(0,", "1)", "(0,", "1)", "(1,", "0)", "(1,", "0)"]

    from archi3d import ConsolidateOptions, consolidate

    summary = consolidate(ws, ConsolidateOptions(run_id=RUN), now=NOW, progress=progress)

    assert calls and calls[-1] == (4, 4)
    assert summary.written
    w1 = one_row(ws, "w1")
    assert (w1["status"], w1["worker_host"], w1["notes"]) == ("completed", "writer-host", "by the writer")
    assert w1["gen_object_path"] == rel_output("w1")
    assert one_row(ws, "w2")["fscore"] == "0.77"
    assert one_row(ws, "w3")["product_id"] == "00009"
    w4 = one_row(ws, "w4")  # consolidate meant to insert it; the writer did first
    assert (w4["status"], w4["error_msg"]) == ("failed", "writer error")
    c1 = one_row(ws, "c1")
    assert c1["status"] == "completed" and c1["gen_object_path"] == rel_output("c1")
    assert one_row(ws, "o1", OTHER_RUN)["status"] == "enqueued"
    assert [r["job_id"] for r in table_rows(ws)] == ["w1", "w2", "c1", "o1", "w3", "w4"]
    check_identity(summary)
    assert summary.upsert_inserted == 0  # w4 is the writer's row now


_COLLAPSER = """
import sys
from pathlib import Path

import pandas as pd

from archi3d.upsert import update_csv_atomic

row = {"run_id": "run-a", "job_id": "d1", "worker_host": "writer-host"}
print(update_csv_atomic(Path(sys.argv[1]), pd.DataFrame([row], dtype="str"), ["run_id", "job_id"], lock_timeout=20))
"""


def test_counters_add_up_after_a_writer_collapsed_duplicates(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["d1", "c1"])
    write_table(ws, [gen_row("d1", "enqueued"), gen_row("c1", "enqueued"), gen_row("d1", "running")])
    marker(ws, "c1", "completed", ago(100))
    output(ws, "c1")

    collapsed: list[object] = []

    def progress(phase: str, done: int, total: int) -> None:
        if phase != "deciding jobs" or collapsed:
            return
        result = subprocess.run(
            [sys.executable, "-c", _COLLAPSER, str(csv_path(ws))], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        collapsed.append(result)

    from archi3d import ConsolidateOptions, consolidate

    summary = consolidate(ws, ConsolidateOptions(run_id=RUN), now=NOW, progress=progress)
    assert [r["job_id"] for r in table_rows(ws)] == ["d1", "c1"]
    assert one_row(ws, "d1")["worker_host"] == "writer-host"
    check_identity(summary)


def test_rows_take_the_line_ending_of_a_table_rewritten_meanwhile(tmp_path: Path) -> None:
    """Rows decided from the LF table as read are written into the CRLF file another program made of it."""
    ws = tmp_path
    write_manifest(ws, ["c1", "c2", "new"])
    write_table(ws, [gen_row("c1", "enqueued"), gen_row("c2", "enqueued", notes="line1\nline2")])
    for job in ("c1", "c2"):
        marker(ws, job, "completed", ago(100))
        output(ws, job)
    assert b"\r\n" not in table_bytes(ws)

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "deciding jobs":  # the table has been read: rewrite it before consolidate writes
            csv_path(ws).write_bytes(table_bytes(ws).replace(b"\n", b"\r\n"))

    from archi3d import ConsolidateOptions, consolidate

    summary = consolidate(ws, ConsolidateOptions(run_id=RUN), now=NOW, progress=progress)

    assert (summary.upsert_updated, summary.upsert_inserted) == (2, 1)
    assert [r["status"] for r in table_rows(ws)] == ["completed", "completed", "enqueued"]
    assert b"\n" not in table_bytes(ws).replace(b"\r\n", b"")


# ----------------------------------------------------------------------------------- counters


def test_every_counter_on_a_hand_built_case(tmp_path: Path) -> None:
    ws = tmp_path
    done = {
        "gen_object_path": rel_output("ok"),
        "generation_start": iso(ago(300)),
        "generation_end": iso(ago(100)),
        "generation_duration_s": "200.000",
        **GLB_HASH,  # its object's hash recorded too
    }
    write_manifest(ws, ["fix", "down", "ok", "dup", "both", "ins1", "ins2", "stale", "keep"])
    write_table(
        ws,
        [
            gen_row("fix", "enqueued"),  # .completed + object: updated, marker mismatch fixed, 1 invalid preview
            gen_row("down", "completed"),  # no object: downgraded, missing output
            gen_row("ok", "completed", **done),  # already right: unchanged
            gen_row("dup", "running", worker_host="h"),  # merged with the next row: 1 merged, 1 updated
            gen_row("dup", "completed", gen_object_path=rel_output("dup")),
            gen_row("both", "enqueued"),  # .completed and .failed: conflict, completed
            gen_row("extra", "failed"),  # not in the manifest: unchanged
            gen_row("stale", "running"),  # stale heartbeat: requeued
            gen_row("keep", "enqueued"),  # nothing on disk: unchanged
            gen_row("o1", "completed", run_id=OTHER_RUN),  # another run: not considered
        ],
    )
    marker(ws, "fix", "completed", ago(100))
    output(ws, "fix")
    output(ws, "fix", "preview_1.png", b"not a png")
    marker(ws, "ok", "completed", ago(100))
    output(ws, "ok")
    marker(ws, "dup", "completed", ago(100))
    output(ws, "dup")
    marker(ws, "both", "completed", ago(100))
    marker(ws, "both", "failed", ago(200))
    output(ws, "both")
    marker(ws, "stale", "inprogress", ago(700))
    output(ws, "lost")

    summary = run(ws)

    assert counters(summary) == {
        "considered": 11,  # 9 CSV rows of the run + 2 manifest-only jobs
        "upsert_inserted": 2,
        "upsert_updated": 5,  # fix, down, dup, both, stale
        "unchanged": 3,  # ok, extra, keep
        "duplicate_rows_merged": 1,
        "conflicts_resolved": 2,  # dup merge, both markers
        "marker_mismatches_fixed": 3,  # fix, both, stale
        "downgraded_missing_output": 1,
        "missing_outputs": 1,
        "invalid_previews": 1,
        "not_in_manifest": 1,
        "orphans": 1,
    }
    check_identity(summary)
    assert dict(summary.status_histogram_before) == {"completed": 3, "enqueued": 3, "failed": 1, "running": 2}
    assert dict(summary.status_histogram_after) == {"completed": 4, "enqueued": 4, "failed": 2}
    assert one_row(ws, "ins1")["status"] == one_row(ws, "ins2")["status"] == "enqueued"
    record = metrics_records(ws)[-1]
    for name, value in counters(summary).items():
        assert record[name] == value
    assert record["conflicts_truncated"] is False
    assert {c["kind"] for c in record["conflicts"]} == {"duplicate_rows", "completed_and_failed_markers", "orphan"}
    assert [c["job_id"] for c in record["conflicts"] if c["kind"] == "orphan"] == ["lost"]
    assert isinstance(record["elapsed_s"], float) and isinstance(record["timestamp"], str)
    assert record["strict"] is False and record["dry_run"] is False and record["written"] is True


def test_conflicts_are_capped_at_100_in_the_record(tmp_path: Path) -> None:
    ws = tmp_path
    jobs = [f"j{i:03d}" for i in range(105)]
    write_manifest(ws, jobs)
    write_table(ws, [gen_row(j, "enqueued") for j in jobs])
    for job in jobs:
        marker(ws, job, "completed", ago(100))
        marker(ws, job, "failed", ago(100))
    summary = run(ws, dry_run=True)
    record = summary.to_record()
    assert len(summary.conflicts) >= 105
    assert len(record["conflicts"]) == 100 and record["conflicts_truncated"] is True
    assert summary.conflicts_resolved == len(summary.conflicts)


# ----------------------------------------------------------------------------------- strict


def test_strict_with_conflicts_writes_nothing(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1", "j2"])
    original = write_table(ws, [gen_row("j1", "enqueued"), gen_row("j1", "running"), gen_row("j2", "enqueued")])
    marker(ws, "j2", "completed", ago(100))
    output(ws, "j2")
    with pytest.raises(StrictConflictError) as caught:
        run(ws, strict=True)
    assert caught.value.exit_code == 1
    assert table_bytes(ws) == original
    assert not lock_path(ws).exists()
    record = metrics_records(ws)[-1]
    assert record["strict"] is True and record["written"] is False
    assert [c["kind"] for c in record["conflicts"]] == ["duplicate_rows"]


def test_strict_without_conflicts_writes(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "enqueued")])
    marker(ws, "j1", "completed", ago(100))
    output(ws, "j1")
    summary = run(ws, strict=True)
    assert summary.written and one_row(ws, "j1")["status"] == "completed"


def test_strict_fails_on_orphans(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    write_table(ws, [gen_row("j1", "enqueued")])
    output(ws, "stray")
    with pytest.raises(StrictConflictError):
        run(ws, strict=True)


# ----------------------------------------------------------------------------------- bad input


def test_run_folder_missing_while_the_csv_has_rows(tmp_path: Path) -> None:
    ws = tmp_path
    original = write_table(ws, [gen_row("j1", "completed", gen_object_path=rel_output("j1"))])
    before = snapshot(ws)
    with pytest.raises(UnknownRunError) as caught:
        run(ws)
    assert caught.value.exit_code == 2
    assert "runs/run-a" in str(caught.value) or "run-a" in str(caught.value)
    assert snapshot(ws) == before
    assert table_bytes(ws) == original


def test_unknown_run_creates_nothing(tmp_path: Path) -> None:
    ws = tmp_path
    write_table(ws, [gen_row("j1", "completed", run_id=OTHER_RUN)])
    run_dir(ws, OTHER_RUN)
    before = snapshot(ws)
    with pytest.raises(UnknownRunError):
        run(ws, run_id="nope")
    with pytest.raises(UnknownRunError):
        run(ws, run_id="nope", dry_run=True)
    assert snapshot(ws) == before


@pytest.mark.parametrize("bad", ["../x", "", "a/b", ".hidden", "x" * 129, "run a"])
def test_invalid_run_id(tmp_path: Path, bad: str) -> None:
    before = snapshot(tmp_path)
    with pytest.raises(InvalidIdError) as caught:
        run(tmp_path, run_id=bad)
    assert caught.value.exit_code == 2
    assert snapshot(tmp_path) == before


def test_a_table_failing_its_schema_is_not_consolidated(tmp_path: Path) -> None:
    ws = tmp_path
    write_manifest(ws, ["j1"])
    original = write_table(
        ws, [gen_row("j1", "enqueued"), gen_row("j2", "done"), gen_row("j3", "failed", generation_end="yesterday")]
    )
    with pytest.raises(TableError) as caught:
        run(ws)
    assert caught.value.exit_code == 2
    text = str(caught.value)
    assert f"{csv_path(ws)}:3: status:" in text
    assert f"{csv_path(ws)}:4: generation_end:" in text
    assert table_bytes(ws) == original


def test_an_unreadable_table_is_bad_input(tmp_path: Path) -> None:
    ws = tmp_path
    run_dir(ws)
    csv_path(ws).mkdir(parents=True)
    with pytest.raises(InputError) as caught:
        run(ws)
    assert caught.value.exit_code == 2
