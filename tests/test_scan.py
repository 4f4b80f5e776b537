"""Integration tests of the evidence readers on real files: worker.log events, a job folder's listing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from archi3d.listing import FileEntry, list_job_folder
from archi3d.model import LogEvent, Status
from archi3d.worker_log import WorkerLog

RUN = "r1"
UTC = dt.UTC


def _line(at: str, record: dict[str, object] | str) -> str:
    body = record if isinstance(record, str) else json.dumps(record)
    return f"{at} {body}\n"


def test_worker_log_files_each_event_under_its_job(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(
        "".join(
            [
                _line(
                    "2026-01-01T00:00:10+00:00",
                    {"event": "job_completed", "run_id": RUN, "job_id": "a", "duration_s": 4},
                ),
                # An escaped job_id: only a real JSON parse reads it as "ab".
                _line("2026-01-01T00:00:20+00:00", '{"event": "job_failed", "run_id": "r1", "job_id": "a\\u0062"}'),
                # "job_id" twice: the top-level key names the job, not the nested one.
                _line(
                    "2026-01-01T00:00:30+00:00",
                    {"event": "job_completed", "run_id": RUN, "meta": {"job_id": "x"}, "job_id": "y"},
                ),
                # Only a nested job_id: no job's event at all.
                _line("2026-01-01T00:00:40+00:00", {"event": "job_completed", "run_id": RUN, "meta": {"job_id": "z"}}),
                # Another run, and a later event of "a" that wins.
                _line("2026-01-01T00:00:50+00:00", {"event": "job_failed", "run_id": "r2", "job_id": "a"}),
                _line("2026-01-01T00:01:00+00:00", {"event": "job_failed", "run_id": RUN, "job_id": "a"}),
                "not a log line at all job_ r1\n",
            ]
        ),
        encoding="utf-8",
    )
    events = WorkerLog.read(log, RUN)
    assert events.event("a") == LogEvent(Status.FAILED, dt.datetime(2026, 1, 1, 0, 1, tzinfo=UTC), None)
    assert events.event("ab") == LogEvent(Status.FAILED, dt.datetime(2026, 1, 1, 0, 0, 20, tzinfo=UTC), None)
    assert events.event("y") == LogEvent(Status.COMPLETED, dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC), None)
    assert events.event("x") is None and events.event("z") is None


def test_worker_log_takes_the_later_line_of_two_at_the_same_time(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    at = "2026-01-01T00:00:10+00:00"
    log.write_text(
        _line(at, {"event": "job_completed", "run_id": RUN, "job_id": "a", "duration_s": 1})
        + _line(at, {"event": "job_failed", "run_id": RUN, "job_id": "a"}),
        encoding="utf-8",
    )
    event = WorkerLog.read(log, RUN).event("a")
    assert event is not None and event.status is Status.FAILED


def test_a_missing_worker_log_has_no_events(tmp_path: Path) -> None:
    assert WorkerLog.read(tmp_path / "absent.log", RUN).event("a") is None


@pytest.mark.parametrize(
    "text",
    [
        '{"run_id": "r1", "job_id": "j1"}',
        '{\n  "run_id" : "r1",\n  "job_id":"j1", "algo": "x"}',
        '{"algo": "x"}',
        '{"run_id": "r1", "job_id": "j2"}',
        '{"run_id": "r2", "job_id": "j1"}',
        '{"job_id": "j1", "job_id": "j2"}',  # a duplicate key: the last one counts
        '{"job_id": "j\\u0032"}',  # escaped: "j2"
        '{"job_id": "j1", "jo\\u0062_id": "j2"}',  # an escaped duplicate key: "job_id" is "j2"
        '{"job_id": 1}',
        '{"job_id": 1, "extra": {"job_id": "j1"}}',  # the key once more, not as a string
        '{"note": "job_id", "job_id": "j1"}',
        '{"extra": {"job_id": "j2"}, "job_id": "j1"}',
        '{"extra": {"job_id": "j1"}, "job_id": "j2"}',
        '{"extra": {"job_id": "j1"}}',
        '[{"run_id": "r1", "job_id": "j1"}]',
        '{"run_id": "r1", "job_id": "j1"',
        '{"job_id": "j1\u00e9"}',
    ],
)
def test_metadata_mismatch_is_what_parsing_the_json_says(tmp_path: Path, text: str) -> None:
    (tmp_path / "metadata.json").write_text(text, encoding="utf-8")
    try:
        meta = json.loads(text)
    except ValueError:
        meta = None
    named = {k: meta.get(k) for k in ("run_id", "job_id")} if isinstance(meta, dict) else {}
    wrong = {k: v for k, v in named.items() if v is not None and str(v) != {"run_id": RUN, "job_id": "j1"}[k]}
    listing = list_job_folder(str(tmp_path), "outputs/j1", RUN, "j1")
    assert listing is not None
    found = listing.mismatch
    assert (found is not None) == bool(wrong)
    assert listing.kinds == ({} if wrong else {"metadata.json": True})  # a folder ruled out lists nothing
    if found is not None:
        assert all(f"{k} {v!r}" in found for k, v in wrong.items())


def test_a_listing_stats_objects_and_links_and_keeps_links_inside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "j1"
    folder.mkdir()
    (folder / "generated.glb").write_bytes(b"glTF" * 4)
    (folder / "preview_1.png").write_bytes(b"png")
    (folder / "inside.glb").symlink_to("generated.glb")
    (tmp_path / "elsewhere.glb").write_bytes(b"glTF")
    (folder / "outside.glb").symlink_to(tmp_path / "elsewhere.glb")
    (folder / "sub").mkdir()
    listing = list_job_folder(str(folder), "runs/r1/outputs/j1", RUN, "j1")
    assert listing is not None
    assert listing.kinds == {
        "generated.glb": True, "preview_1.png": True, "inside.glb": None, "outside.glb": None, "sub": False
    }  # fmt: skip
    assert set(listing.stated) == {"generated.glb", "inside.glb", "outside.glb"}  # objects and links only
    assert listing.stated["inside.glb"] == FileEntry(16, (folder / "generated.glb").stat().st_mtime, True)
    assert listing.stated["outside.glb"] is None  # a link out of the job's folder is no evidence
    assert listing.is_regular("preview_1.png") and listing.is_regular("inside.glb")
    assert not listing.is_regular("outside.glb") and not listing.is_regular("sub")
    assert list_job_folder(str(tmp_path / "absent"), "runs/r1/outputs/absent", RUN, "absent") is None
