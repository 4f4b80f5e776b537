"""The demo workspace generator: deterministic, valid files, and every situation really on disk."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from archi3d.columns import GENERATIONS_COLUMNS, MANIFEST_COLUMNS
from archi3d.csvtable import read_csv_table
from archi3d.demo import (
    EXPECTATIONS_FILE,
    LATER_PHASE_COLUMNS,
    PNG_SIGNATURE,
    SITUATIONS,
    TABLE_COLUMNS,
    DemoWorkspace,
    Expectation,
    build_demo_workspace,
    glb_bytes,
    png_bytes,
    situation_counts,
)
from archi3d.errors import InvalidIdError
from archi3d.formats import ID_PATTERN
from archi3d.schema import validate_generations, validate_manifest

UTC = dt.UTC
REFERENCE_MARKER = re.compile(r"timestamp: (?P<ts>\S+)\npid: \d+\n")
HEARTBEAT_TIMEOUT = dt.timedelta(seconds=600)
FRESH_SITUATIONS = ("fresh_heartbeat", "rerun_under_way")


@attrs.frozen
class Disk:
    """What a built workspace holds, read back independently of the generator."""

    root: Path
    run_id: str
    rows: dict[tuple[str, str], list[dict[str, str]]]
    manifest_ids: frozenset[str]
    log_events: list[dict[str, object]]

    def state(self, job_id: str, suffix: str) -> Path:
        return self.root / "runs" / self.run_id / "state" / f"{job_id}.{suffix}"

    def outputs(self, job_id: str) -> Path:
        return self.root / "runs" / self.run_id / "outputs" / job_id

    def has_evidence(self, job_id: str) -> bool:
        return self.outputs(job_id).exists() or any(self.state(job_id, "x").parent.glob(f"{job_id}.*"))

    def rows_of(self, expectation: Expectation) -> list[dict[str, str]]:
        return self.rows.get((expectation.run_id, expectation.job_id), [])

    def only_row(self, expectation: Expectation) -> dict[str, str]:
        rows = self.rows_of(expectation)
        assert len(rows) == 1, f"{expectation}: expected one row, found {len(rows)}"
        return rows[0]

    def events(self, job_id: str, event: str) -> list[dict[str, object]]:
        return [e for e in self.log_events if e["job_id"] == job_id and e["event"] == event]


def read_disk(demo: DemoWorkspace) -> Disk:
    table = read_csv_table(demo.workspace / "tables" / "generations.csv", validate_generations)
    rows: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in table.rows(range(len(table))):
        rows.setdefault((row["run_id"], row["job_id"]), []).append(row)
    manifest = read_csv_table(demo.workspace / "runs" / demo.run_id / "manifest.csv", validate_manifest)
    events = []
    for line in (demo.workspace / "logs" / "worker.log").read_text(encoding="utf-8").splitlines():
        stamp, _, payload = line.partition(" ")
        assert parse_time(stamp).tzinfo is not None
        events.append(json.loads(payload))
    return Disk(demo.workspace, demo.run_id, rows, frozenset(manifest.column("job_id")), events)


def parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    assert moment.utcoffset() == dt.timedelta(0), text
    return moment


def marker_time(path: Path) -> dt.datetime:
    match = REFERENCE_MARKER.fullmatch(path.read_text(encoding="utf-8"))
    assert match is not None, f"{path}: not in the reference marker format"
    return parse_time(match["ts"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoWorkspace:
    return build_demo_workspace(tmp_path_factory.mktemp("demo") / "ws", jobs=40, seed=7)


@pytest.fixture(scope="module")
def disk(demo: DemoWorkspace) -> Disk:
    return read_disk(demo)


# determinism


def snapshot(root: Path, skip: set[Path]) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes, and the mtime of evidence files (markers and outputs), whose times consolidate reads."""
    files: dict[str, tuple[bytes, int]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path not in skip:
            name = path.relative_to(root).as_posix()
            evidence = re.match(r"runs/[^/]+/(state|outputs)/", name) is not None
            files[name] = (path.read_bytes(), path.stat().st_mtime_ns if evidence else 0)
    return files


def fresh_markers(demo: DemoWorkspace) -> set[Path]:
    return {
        demo.workspace / "runs" / e.run_id / "state" / f"{e.job_id}.inprogress"
        for e in demo.expectations
        if e.situation in FRESH_SITUATIONS
    }


def test_same_seed_builds_the_same_workspace(tmp_path: Path) -> None:
    first = build_demo_workspace(tmp_path / "a", jobs=40, seed=3)
    second = build_demo_workspace(tmp_path / "b", jobs=40, seed=3)
    assert first.expectations == second.expectations
    skipped = fresh_markers(first)
    assert skipped and all(path.is_file() for path in skipped)
    before = snapshot(first.workspace, skipped)
    after = snapshot(second.workspace, fresh_markers(second))
    assert before.keys() == after.keys()
    for name in before:
        assert before[name] == after[name], name
    for name in ("tables/generations.csv", f"runs/{first.run_id}/manifest.csv", "logs/worker.log"):
        assert name in before


def test_another_seed_builds_another_workspace(tmp_path: Path) -> None:
    first = build_demo_workspace(tmp_path / "a", jobs=40, seed=3)
    second = build_demo_workspace(tmp_path / "b", jobs=40, seed=4)
    table = Path("tables/generations.csv")
    assert (first.workspace / table).read_bytes() != (second.workspace / table).read_bytes()


# file formats


def test_glb_is_a_valid_binary_gltf() -> None:
    data = glb_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    chunks: list[tuple[bytes, bytes]] = []
    offset = 12
    while offset < len(data):
        size, kind = struct.unpack_from("<I4s", data, offset)
        assert size % 4 == 0
        chunks.append((kind, data[offset + 8 : offset + 8 + size]))
        offset += 8 + size
    assert offset == len(data)
    assert [kind for kind, _ in chunks] == [b"JSON", b"BIN\x00"]
    document = json.loads(chunks[0][1].decode("utf-8"))
    assert document["asset"]["version"] == "2.0"
    accessor = document["accessors"][0]
    view = document["bufferViews"][accessor["bufferView"]]
    assert document["buffers"][0]["byteLength"] <= len(chunks[1][1])
    vertices = struct.unpack_from(f"<{accessor['count'] * 3}f", chunks[1][1], view["byteOffset"])
    assert accessor["count"] == 3 and view["byteLength"] == 36
    assert max(vertices[0::3]) == accessor["max"][0] and min(vertices[1::3]) == accessor["min"][1]
    primitive = document["meshes"][document["nodes"][0]["mesh"]]["primitives"][0]
    assert primitive["attributes"]["POSITION"] == 0


def test_png_has_valid_chunks_and_pixels() -> None:
    data = png_bytes((10, 20, 30), size=4)
    assert data.startswith(PNG_SIGNATURE)
    offset = len(PNG_SIGNATURE)
    chunks: dict[bytes, bytes] = {}
    order: list[bytes] = []
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack_from(">I", data, offset + 8 + length)
        assert crc == zlib.crc32(kind + body), kind
        chunks[kind] = body
        order.append(kind)
        offset += 12 + length
    assert order == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", chunks[b"IHDR"]) == (4, 4, 8, 2, 0, 0, 0)
    assert zlib.decompress(chunks[b"IDAT"]) == (b"\x00" + bytes((10, 20, 30)) * 4) * 4


# tables


def test_table_and_manifest_pass_their_schemas(demo: DemoWorkspace) -> None:
    table_path = demo.workspace / "tables" / "generations.csv"
    assert table_path.read_bytes().startswith(b"\xef\xbb\xbf")
    table = read_csv_table(table_path, validate_generations)
    assert table.header == TABLE_COLUMNS
    assert table.header[: len(GENERATIONS_COLUMNS)] == GENERATIONS_COLUMNS
    manifest = read_csv_table(demo.workspace / "runs" / demo.run_id / "manifest.csv", validate_manifest)
    assert manifest.header == MANIFEST_COLUMNS


def test_cells_follow_the_conventions(demo: DemoWorkspace, disk: Disk) -> None:
    backslashed = {e.job_id for e in demo.expectations if e.situation == "windows_backslash_path"}
    for (run_id, job_id), rows in disk.rows.items():
        assert ID_PATTERN.fullmatch(run_id) and ID_PATTERN.fullmatch(job_id)
        for row in rows:
            for column in ("created_at", "generation_start", "generation_end"):
                if row[column]:
                    parse_time(row[column])
            for column in (c for c in TABLE_COLUMNS if c.endswith("_path") and row[c]):
                assert not row[column].startswith("/") and ".." not in row[column].split("/")
                deliberate = job_id in backslashed and column in ("gen_object_path", "preview_1_path")
                assert ("\\" in row[column]) == deliberate, (job_id, column)


def test_expectations_file_holds_the_expectations(demo: DemoWorkspace) -> None:
    records = json.loads((demo.workspace / EXPECTATIONS_FILE).read_text(encoding="utf-8"))
    assert [Expectation(**record) for record in records] == list(demo.expectations)
    assert {e.run_id for e in demo.expectations} == {demo.run_id}
    assert len(demo.expectations) == 40
    assert len({e.job_id for e in demo.expectations}) == 40


def test_situation_counts_cover_every_situation() -> None:
    for jobs in (34, 40, 200, 100_000):
        counts = situation_counts(jobs)
        assert sum(counts.values()) == jobs
        assert set(counts) == set(SITUATIONS) and min(counts.values()) >= 1
    with pytest.raises(ValueError, match="at least 34"):
        situation_counts(33)


# every situation, read back from disk


def check_clean_completed(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    assert row["status"] == "completed" and row["gen_object_path"] == e.gen_object_path
    assert (disk.root / e.gen_object_path).read_bytes() == glb_bytes()
    previews = [row[f"preview_{n}_path"] for n in (1, 2, 3) if row[f"preview_{n}_path"]]
    assert previews and all((disk.root / p).read_bytes().startswith(PNG_SIGNATURE) for p in previews)
    assert marker_time(disk.state(e.job_id, "completed")) == parse_time(row["generation_end"])
    assert e.job_id in disk.manifest_ids


def check_crashed_worker_completed(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    assert row["status"] == "enqueued" and row["gen_object_path"] == ""
    name = f"{row['product_id']}_{row['variant']}_{row['algo']}_{e.job_id[:8]}.glb"
    assert e.gen_object_path == f"runs/{e.run_id}/outputs/{e.job_id}/{name}"
    assert (disk.root / e.gen_object_path).is_file()
    assert disk.state(e.job_id, "lock").is_file()
    marker_time(disk.state(e.job_id, "completed"))
    assert len(disk.events(e.job_id, "job_completed")) == 1


def check_crashed_worker_failed(disk: Disk, e: Expectation) -> None:
    assert disk.only_row(e)["status"] == "enqueued"
    assert disk.state(e.job_id, "failed").is_file() and disk.state(e.job_id, "lock").is_file()
    assert_error_file(disk, e)
    assert len(disk.events(e.job_id, "job_failed")) == 1


def assert_error_file(disk: Disk, e: Expectation) -> None:
    text = disk.state(e.job_id, "error.txt").read_bytes().decode("utf-8", errors="replace")
    assert re.match(r"Error: [^\n]+\n\nTraceback:\n", text)


def check_failed(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    assert row["status"] == "failed" and row["error_msg"]
    assert disk.state(e.job_id, "failed").is_file()
    assert_error_file(disk, e)


def check_failed_error_from_file(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    assert row["status"] == "failed" and row["error_msg"] == ""
    assert_error_file(disk, e)


def check_pending(disk: Disk, e: Expectation) -> None:
    assert disk.only_row(e)["status"] == "enqueued"
    assert not disk.has_evidence(e.job_id)


def check_stale_heartbeat(disk: Disk, e: Expectation) -> None:
    assert disk.only_row(e)["status"] == "running"
    assert_heartbeat_age(disk.state(e.job_id, "inprogress"), fresh=False)
    assert not disk.state(e.job_id, "completed").exists() and not disk.state(e.job_id, "failed").exists()


def assert_heartbeat_age(path: Path, fresh: bool) -> None:
    text = path.read_text(encoding="utf-8")
    stamp = json.loads(text)["timestamp"] if text.startswith("{") else marker_time(path).isoformat()
    age = dt.datetime.now(UTC) - parse_time(stamp)
    assert (dt.timedelta(0) <= age < dt.timedelta(seconds=60)) if fresh else age > HEARTBEAT_TIMEOUT * 10


def check_fresh_heartbeat(disk: Disk, e: Expectation) -> None:
    assert disk.only_row(e)["status"] in ("running", "enqueued")
    assert_heartbeat_age(disk.state(e.job_id, "inprogress"), fresh=True)


def check_completed_missing_object(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    assert row["status"] == "completed" and row["gen_object_path"] == e.gen_object_path
    assert not (disk.root / e.gen_object_path).exists()


def check_completed_empty_object(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    assert row["status"] == "completed" and (disk.root / row["gen_object_path"]).stat().st_size == 0


def check_duplicate_rows(disk: Disk, e: Expectation) -> None:
    statuses = sorted(row["status"] for row in disk.rows_of(e))
    assert statuses in (["completed", "enqueued"], ["completed", "running"])
    assert (disk.root / e.gen_object_path).is_file()


def check_manifest_only_with_evidence(disk: Disk, e: Expectation) -> None:
    assert not disk.rows_of(e) and e.job_id in disk.manifest_ids
    assert disk.state(e.job_id, "completed" if e.status == "completed" else "failed").is_file()


def check_manifest_only_no_evidence(disk: Disk, e: Expectation) -> None:
    assert not disk.rows_of(e) and e.job_id in disk.manifest_ids
    assert not disk.has_evidence(e.job_id)


def check_orphan(disk: Disk, e: Expectation) -> None:
    assert not disk.rows_of(e) and e.job_id not in disk.manifest_ids and not e.in_table
    assert disk.outputs(e.job_id).is_dir() or disk.state(e.job_id, "failed").is_file()


def check_invalid_previews(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    assert [row[f"preview_{n}_path"] for n in (1, 2, 3)] == ["", "", ""]
    assert (disk.outputs(e.job_id) / "preview_1.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (disk.outputs(e.job_id) / "preview_2.png").stat().st_size == 0
    assert not (disk.outputs(e.job_id) / "preview_3.png").read_bytes().startswith(PNG_SIGNATURE)


def check_redo_leftover_error(disk: Disk, e: Expectation) -> None:
    assert disk.only_row(e)["error_msg"] == ""
    assert_error_file(disk, e)
    assert disk.state(e.job_id, "completed").is_file() and not disk.state(e.job_id, "failed").exists()


def check_legacy_object_path(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    assert re.fullmatch(rf"runs/{e.run_id}/outputs/{row['algo']}/[^/]+\.glb", e.gen_object_path)
    assert row["gen_object_path"] == e.gen_object_path and (disk.root / e.gen_object_path).is_file()
    assert not disk.outputs(e.job_id).exists()


def check_windows_backslash_path(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    assert "\\" in row["gen_object_path"] and row["gen_object_path"].replace("\\", "/") == e.gen_object_path
    assert (disk.root / e.gen_object_path).is_file()


def check_numeric_looking_ids(disk: Disk, e: Expectation) -> None:
    assert re.fullmatch(r"\d+|\d+e\d+", e.job_id)
    assert (disk.root / e.gen_object_path).is_file()


def check_json_marker(disk: Disk, e: Expectation) -> None:
    assert "timestamp" in json.loads(disk.state(e.job_id, "completed").read_text(encoding="utf-8"))
    assert disk.only_row(e)["status"] == "enqueued"


def check_empty_marker(disk: Disk, e: Expectation) -> None:
    assert disk.state(e.job_id, "completed").stat().st_size == 0
    assert disk.only_row(e)["status"] == "enqueued"


def check_metadata_mismatch(disk: Disk, e: Expectation) -> None:
    metadata = json.loads((disk.outputs(e.job_id) / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["job_id"] != e.job_id
    assert disk.only_row(e)["status"] == "completed" and (disk.root / e.gen_object_path).is_file()


def check_failed_marker_beside_completed_row(disk: Disk, e: Expectation) -> None:
    assert disk.only_row(e)["status"] == "completed" and (disk.root / e.gen_object_path).is_file()
    assert disk.state(e.job_id, "failed").is_file() and not disk.state(e.job_id, "completed").exists()


def check_rerun_under_way(disk: Disk, e: Expectation) -> None:
    assert disk.only_row(e)["status"] == "completed" and disk.state(e.job_id, "completed").is_file()
    assert_heartbeat_age(disk.state(e.job_id, "inprogress"), fresh=True)


def check_several_candidate_objects(disk: Disk, e: Expectation) -> None:
    candidates = sorted(disk.outputs(e.job_id).glob("*.glb"), key=lambda p: p.stat().st_mtime)
    assert len(candidates) >= 2 and candidates[-1] == disk.root / e.gen_object_path
    assert max(candidates) != candidates[-1], "the newest must not also be the last by name"


def check_completed_and_failed_markers(disk: Disk, e: Expectation) -> None:
    assert disk.state(e.job_id, "completed").is_file() and disk.state(e.job_id, "failed").is_file()
    assert (disk.root / e.gen_object_path).is_file()


def check_not_in_manifest(disk: Disk, e: Expectation) -> None:
    assert disk.only_row(e) and e.job_id not in disk.manifest_ids


def check_object_changed(disk: Disk, e: Expectation) -> None:
    row = disk.only_row(e)
    obj = disk.root / e.gen_object_path
    assert row["status"] == "completed" and obj.is_file()
    assert row["gen_object_sha256"] != hashlib.sha256(obj.read_bytes()).hexdigest()


CHECKS: dict[str, Callable[[Disk, Expectation], None]] = {
    name.removeprefix("check_"): check for name, check in globals().items() if name.startswith("check_")
}


def test_every_situation_has_a_check() -> None:
    assert set(CHECKS) == set(SITUATIONS)


def test_every_situation_is_on_disk(demo: DemoWorkspace, disk: Disk) -> None:
    assert {e.situation for e in demo.expectations} == set(SITUATIONS)
    for expectation in demo.expectations:
        CHECKS[expectation.situation](disk, expectation)


def test_expected_statuses_match_the_rules(demo: DemoWorkspace) -> None:
    for e in demo.expectations:
        assert e.in_table == (e.situation != "orphan")
        assert e.status in (("",) if e.situation == "orphan" else ("enqueued", "running", "completed", "failed"))
        assert e.status != "completed" or e.gen_object_path


def test_numeric_looking_ids_cover_both_shapes(disk: Disk, demo: DemoWorkspace) -> None:
    ids = {e.job_id for e in demo.expectations if e.situation == "numeric_looking_ids"}
    assert {"197260739297", "12e456789012"} <= ids
    assert any(row["product_id"] == "00123" for rows in disk.rows.values() for row in rows)


def test_a_long_undecodable_error_file_is_present(disk: Disk, demo: DemoWorkspace) -> None:
    files = [disk.state(e.job_id, "error.txt") for e in demo.expectations if e.situation == "failed_error_from_file"]
    longest = max((path.read_bytes() for path in files), key=len)
    assert len(longest) > 2000
    with pytest.raises(UnicodeDecodeError):
        longest.decode("utf-8")


# other runs


@pytest.mark.parametrize("lean", [False, True])
def test_other_runs_are_complete_and_scored(tmp_path: Path, lean: bool) -> None:
    demo = build_demo_workspace(tmp_path / "ws", jobs=40, seed=1, other_runs=2, lean=lean)
    disk = read_disk(demo)
    assert demo.other_run_id == "demo-run-2"
    for run_id in ("demo-run-2", "demo-run-3"):
        rows = [row for (run, _), group in disk.rows.items() if run == run_id for row in group]
        assert len(rows) == 40 and {row["status"] for row in rows} == {"completed"}
        for row in rows:
            assert all(row[column] for column in LATER_PHASE_COLUMNS)
            assert (tmp_path / "ws" / row["gen_object_path"]).read_bytes() == glb_bytes()
            previews = [row[f"preview_{n}_path"] for n in (1, 2, 3) if row[f"preview_{n}_path"]]
            assert bool(previews) != lean
            assert all((tmp_path / "ws" / path).is_file() for path in previews)
        manifest = read_csv_table(tmp_path / "ws" / "runs" / run_id / "manifest.csv", validate_manifest)
        assert len(manifest) == 40


def test_runs_share_the_table_in_interleaved_chunks(tmp_path: Path) -> None:
    demo = build_demo_workspace(tmp_path / "ws", jobs=40, seed=1, other_runs=1)
    table = read_csv_table(tmp_path / "ws" / "tables" / "generations.csv")
    runs = table.column("run_id")
    changes = sum(1 for before, after in itertools.pairwise(runs) if before != after)
    assert changes >= 3 and set(runs) == {demo.run_id, demo.other_run_id}


# refusals


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError):
        build_demo_workspace(tmp_path, jobs=40)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_refuses_an_invalid_run_id(tmp_path: Path) -> None:
    with pytest.raises(InvalidIdError):
        build_demo_workspace(tmp_path / "ws", jobs=40, run_id="../escape")


def test_refuses_too_few_jobs(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_demo_workspace(tmp_path / "ws", jobs=10)
    assert not (tmp_path / "ws").exists()
