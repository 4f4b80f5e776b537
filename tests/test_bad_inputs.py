"""Issue 7: a corpus of bad inputs, each with its expected outcome, run through the `archi3d` CLI.

Every case starts from the same small workspace, which is a fixed point of consolidate (running it
changes nothing), and spoils one thing. Its outcome is one of:

- exit status 2, with a message naming the file, the line and the column at fault, no traceback, and
  the workspace left exactly as it was (logs/metrics.log aside);
- the documented handling: exit 0, the table still valid, changed exactly as the spec says (the rows
  named by the case get the cells it names, every other row keeps its bytes), and a second run
  changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from archi3d.cli import app
from archi3d.csvtable import read_csv_table
from archi3d.schema import validate_generations
from reliability_support import DENY_ENV, DENY_FILES_ENV, parse_rows, run_archi3d
from workspace_builder import (
    BOM,
    GLB,
    GLB_HASH,
    OTHER_RUN,
    PNG,
    RUN,
    TABLE_COLUMNS,
    ago,
    csv_path,
    encode_csv,
    error_txt,
    gen_row,
    iso,
    marker,
    output,
    rel_output,
    run_dir,
    set_mtime,
    snapshot,
    state_file,
    table_bytes,
    write_manifest,
    write_table,
    write_table_bytes,
)

TRUNCATED = " (truncated; see error.txt)"
DOWNGRADE = "missing generated.glb; downgraded by consolidate"
LONG_ID = "r" * 129
LONGEST_ID = "r" * 128

# ----------------------------------------------------------------------------------- the base workspace

J1_START, J1_END = ago(3600), ago(100)


def base_rows() -> list[dict[str, str]]:
    """j1 completed (object and marker on disk), j2 enqueued (no evidence), j3 failed, o1 of another run."""
    return [
        gen_row(
            "j1",
            "completed",
            gen_object_path=rel_output("j1"),
            generation_start=iso(J1_START),
            generation_end=iso(J1_END),
            generation_duration_s="3500",
            **GLB_HASH,
        ),
        gen_row("j2", "enqueued"),
        gen_row("j3", "failed", error_msg="boom"),
        gen_row("o1", "completed", run_id=OTHER_RUN, product_id="00123", notes='a "quoted", note'),
    ]


def build_base(ws: Path) -> None:
    write_manifest(ws, ["j1", "j2", "j3"])
    write_table(ws, base_rows())
    marker(ws, "j1", "completed", J1_END)
    output(ws, "j1", mtime=J1_START)
    run_dir(ws, OTHER_RUN)


# ----------------------------------------------------------------------------------- running it

Build = Callable[[Path], None]


@dataclasses.dataclass(frozen=True)
class Outcome:
    ws: Path
    exit_code: int
    stdout: str
    stderr: str
    before: bytes | None
    after: bytes | None
    record: dict[str, Any] | None
    elapsed: float


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input and its expected outcome."""

    id: str
    build: Build
    exit_code: int = 2
    messages: tuple[str, ...] = ()
    """Regular expressions the error message must match; {csv}, {manifest}, {ws}, {run_dir} are filled in."""
    run_id: str = RUN
    args: tuple[str, ...] = ()
    changed: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    """Exit 0: the rows of RUN that change (job_id -> cells they must then hold); every other row keeps its bytes."""
    inserted: tuple[str, ...] = ()
    """Exit 0: job_ids of RUN appended to the table."""
    check: Callable[[Outcome], None] | None = None
    wrapped_env: Callable[[Path], dict[str, str]] | None = None
    """Run the CLI as a subprocess through reliability_support.WRAPPER with this environment."""
    creates_nothing: bool = False
    """Exit 2: not even logs/ may appear."""
    marks: tuple[pytest.MarkDecorator, ...] = ()


def invoke(ws: Path, case: Case) -> Outcome:
    before = table_bytes(ws) if csv_path(ws).is_file() else None
    args = ["consolidate", "--workspace", str(ws), "--run-id", case.run_id, "--json", *case.args]
    started = time.monotonic()
    if case.wrapped_env is not None:
        proc = run_archi3d(args, env=case.wrapped_env(ws), wrapped=True, timeout=60)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        result = CliRunner().invoke(app, args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback: let pytest show it
        code, out, err = result.exit_code, result.stdout, result.stderr
    elapsed = time.monotonic() - started
    after = table_bytes(ws) if csv_path(ws).is_file() else None
    record: dict[str, Any] | None = None
    if code == 0:
        value = json.loads(out)
        assert isinstance(value, dict)
        record = value
    return Outcome(ws, code, out, err, before, after, record, elapsed)


def fill(template: str, ws: Path) -> str:
    values = {
        "csv": re.escape(str(csv_path(ws))),
        "manifest": re.escape(str(ws / "runs" / RUN / "manifest.csv")),
        "ws": re.escape(str(ws)),
        "run_dir": re.escape(str(ws / "runs" / RUN)),
    }
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def without_logs(found: Mapping[str, bytes | None]) -> dict[str, bytes | None]:
    return {k: v for k, v in found.items() if k != "logs" and not k.startswith("logs/")}


def check_exit_2(case: Case, outcome: Outcome, before: Mapping[str, bytes | None]) -> None:
    assert outcome.exit_code == case.exit_code, (outcome.stdout, outcome.stderr)
    assert "Traceback" not in outcome.stderr + outcome.stdout
    assert outcome.stderr.startswith("error: ") or "Error" in outcome.stderr, outcome.stderr
    for template in case.messages:
        assert re.search(fill(template, outcome.ws), outcome.stderr), (template, outcome.stderr)
    assert outcome.after == outcome.before  # the table is byte-identical
    after = snapshot(outcome.ws)
    if case.creates_nothing:
        assert after == before
    else:
        assert without_logs(after) == without_logs(before)


def raw_lines(data: bytes) -> list[bytes]:
    """Records of a table whose cells hold no line breaks (the base table), line endings dropped."""
    text = data[len(BOM) :] if data.startswith(BOM) else data
    return [line.rstrip(b"\r") for line in text.split(b"\n") if line.strip(b"\r")]


def check_documented(case: Case, outcome: Outcome) -> None:
    assert outcome.exit_code == 0, (outcome.stdout, outcome.stderr)
    assert outcome.after is not None
    table = read_csv_table(csv_path(outcome.ws), validate_generations)  # still parses and validates
    assert outcome.record is not None and outcome.record["run_id"] == case.run_id
    if outcome.before is not None:
        header_before, rows_before = parse_rows(outcome.before)
        header_after, rows_after = parse_rows(outcome.after)
        assert header_after == header_before
        keys_before = [(r["run_id"], r["job_id"]) for r in rows_before]
        keys_after = [(r["run_id"], r["job_id"]) for r in rows_after]
        assert keys_after == keys_before + [(RUN, j) for j in case.inserted]
        changed = {(RUN, j) for j in case.changed}
        after_lines = set(raw_lines(outcome.after))
        for key, line, row in zip(keys_before, raw_lines(outcome.before)[1:], rows_before):
            if key in changed:
                continue
            assert line in after_lines, f"{key}: its row lost its bytes"
            assert row == rows_after[keys_after.index(key)]
        for (run_id, job_id), row in zip(keys_after, rows_after):
            if (run_id, job_id) in changed:
                before_row = rows_before[keys_before.index((run_id, job_id))]
                assert row != before_row, f"{job_id} did not change"
                for column, value in case.changed[job_id].items():
                    assert row[column] == value, (job_id, column, row[column], value)
        assert outcome.record["upsert_updated"] == len(case.changed)
        assert outcome.record["upsert_inserted"] == len(case.inserted)
    if case.check is not None:
        case.check(outcome)
    # Whatever it was, the bad input is now settled: a second run changes nothing.
    after = outcome.after
    again = CliRunner().invoke(
        app, ["consolidate", "--workspace", str(outcome.ws), "--run-id", case.run_id, "--json", *case.args]
    )
    assert again.exit_code == 0, again.stderr
    second = json.loads(again.stdout)
    assert (second["upsert_updated"], second["upsert_inserted"]) == (0, 0)
    assert table_bytes(outcome.ws) == after
    assert len(table) >= 1


# ----------------------------------------------------------------------------------- the corpus: the table


def replace_table(data: bytes) -> Build:
    def build(ws: Path) -> None:
        build_base(ws)
        write_table_bytes(ws, data)

    return build


def with_rows(*extra: dict[str, str], columns: tuple[str, ...] = TABLE_COLUMNS) -> Build:
    def build(ws: Path) -> None:
        build_base(ws)
        write_table(ws, [*base_rows(), *extra], columns)

    return build


def base_table(newline: str = "\n", bom: bool = True) -> bytes:
    return encode_csv(base_rows(), newline=newline, bom=bom)


def ragged(extra_fields: int) -> bytes:
    good = base_table()
    width = len(TABLE_COLUMNS) + extra_fields
    return good + ("run-a,j9,enqueued" + "," * (width - 3)).encode() + b"\n"


def header_without(column: str) -> bytes:
    rows = [{k: v for k, v in row.items() if k != column} for row in base_rows()]
    return encode_csv(rows, tuple(c for c in TABLE_COLUMNS if c != column))


def non_utf8() -> bytes:
    return encode_csv([*base_rows(), gen_row("j9", notes="PLACEHOLDER")]).replace(b"PLACEHOLDER", b"caf\xe9 cr\xe8me")


NOTES_FIELD = TABLE_COLUMNS.index("notes") + 1


def unbalanced_quote() -> bytes:
    return base_table() + b'run-a,j9,enqueued,"never closed' + b"," * (len(TABLE_COLUMNS) - 4) + b"\n"


def quote_opened_early() -> bytes:
    """Issue 13, 11: a quote left open on line 6, and quoted cells after it: reported at line 8 before."""
    rows = [*base_rows(), gen_row("j9", notes="PLACEHOLDER"), gen_row("j10"), gen_row("j11", notes='a "quoted", note')]
    return encode_csv(rows).replace(b"PLACEHOLDER", b'"never closed')


def table_is_a_directory(ws: Path) -> None:
    build_base(ws)
    csv_path(ws).unlink()
    csv_path(ws).mkdir()


TABLE_CASES = [
    Case("ragged-row-short", replace_table(ragged(-2)), messages=(r"{csv}:6\b.*fields",)),
    Case("ragged-row-long", replace_table(ragged(+3)), messages=(r"{csv}:6\b.*fields",)),
    Case("missing-run_id-column", replace_table(header_without("run_id")), messages=(r"{csv}:1: run_id: ",)),
    Case("missing-job_id-column", replace_table(header_without("job_id")), messages=(r"{csv}:1: job_id: ",)),
    Case("missing-status-column", replace_table(header_without("status")), messages=(r"{csv}:1: status: ",)),
    Case(
        "duplicated-header-name",
        replace_table(encode_csv(base_rows(), (*TABLE_COLUMNS, "notes"))),
        messages=(r"{csv}:1: notes: .*more than once",),
    ),
    Case("invalid-status", with_rows(gen_row("j9", "finished")), messages=(r"{csv}:6: status: .*'finished'",)),
    Case("status-wrong-case", with_rows(gen_row("j9", "Completed")), messages=(r"{csv}:6: status: ",)),
    Case("csv-run_id-dotdot", with_rows(gen_row("j9", run_id="../x")), messages=(r"{csv}:6: run_id: .*'\.\./x'",)),
    Case("csv-run_id-slash", with_rows(gen_row("j9", run_id="a/b")), messages=(r"{csv}:6: run_id: .*'a/b'",)),
    Case("csv-run_id-empty", with_rows(gen_row("j9", run_id="")), messages=(r"{csv}:6: run_id: ",)),
    Case("csv-run_id-129-chars", with_rows(gen_row("j9", run_id=LONG_ID)), messages=(r"{csv}:6: run_id: ",)),
    Case("csv-job_id-dotdot", with_rows(gen_row("../x")), messages=(r"{csv}:6: job_id: .*'\.\./x'",)),
    Case("csv-job_id-slash", with_rows(gen_row("a/b")), messages=(r"{csv}:6: job_id: .*'a/b'",)),
    Case("csv-job_id-empty", with_rows(gen_row("")), messages=(r"{csv}:6: job_id: ",)),
    Case("csv-job_id-129-chars", with_rows(gen_row(LONG_ID)), messages=(r"{csv}:6: job_id: ",)),
    Case("csv-job_id-trailing-space", with_rows(gen_row("j9 ")), messages=(r"{csv}:6: job_id: ",)),
    Case(
        "csv-bad-id-in-another-runs-row",  # the whole table is validated, not only the run's rows
        with_rows(gen_row("x/../../y", run_id=OTHER_RUN)),
        messages=(r"{csv}:6: job_id: ",),
    ),
    Case("non-utf8-bytes", replace_table(non_utf8()), messages=(rf"{{csv}}:6: (notes|field {NOTES_FIELD}): ",)),
    Case(
        "utf16-file",
        replace_table(b"\xff\xfe" + base_table(bom=False).decode().encode("utf-16-le")),
        messages=(r"{csv}:1\b",),
    ),
    Case("empty-0-byte-file", replace_table(b""), messages=(r"{csv}:1\b.*empty",)),
    Case("blank-lines-only", replace_table(BOM + b"\n\r\n\n"), messages=(r"{csv}:1\b.*empty",)),
    Case("unbalanced-quote", replace_table(unbalanced_quote()), messages=(r"{csv}:6\b.*quote",)),
    Case("quote-opened-early", replace_table(quote_opened_early()), messages=(r"{csv}:6: notes: .*never closed",)),
    Case(
        "doubled-bom",  # issue 13, 6: the first column became "\ufeffproduct_id" and a second one was appended
        replace_table(BOM + base_table()),
        messages=(r"{csv}:1: '\\ufeffproduct_id': .*doubled BOM",),
    ),
    Case(
        "empty-header-name",
        replace_table(encode_csv(base_rows(), (*TABLE_COLUMNS, ""))),
        messages=(rf"{{csv}}:1: field {len(TABLE_COLUMNS) + 1}: empty column name",),
    ),
    Case(
        "timestamp-not-iso8601",
        with_rows(gen_row("j9", "failed", generation_end="yesterday")),
        messages=(r"{csv}:6: generation_end: .*'yesterday'",),
    ),
    Case(
        "timestamp-impossible-date",
        with_rows(gen_row("j9", "failed", generation_start="2026-02-30T10:00:00+00:00")),
        messages=(r"{csv}:6: generation_start: ",),
    ),
    Case(
        "timestamp-day-first",
        with_rows(gen_row("j9", created_at="01/03/2026 10:00")),
        messages=(r"{csv}:6: created_at: ",),
    ),
    Case(
        "absolute-path",
        with_rows(gen_row("j9", "completed", gen_object_path="/etc/passwd")),
        messages=(r"{csv}:6: gen_object_path: .*'/etc/passwd'",),
    ),
    Case(
        "dotdot-path",
        with_rows(gen_row("j9", preview_1_path="runs/run-a/../../../secret.png")),
        messages=(r"{csv}:6: preview_1_path: ",),
    ),
    Case(
        "windows-dotdot-path",
        with_rows(gen_row("j9", gen_object_path="runs\\..\\..\\x.glb")),
        messages=(r"{csv}:6: gen_object_path: ",),
    ),
    Case(
        "windows-drive-path",
        with_rows(gen_row("j9", used_image_1_path="C:\\images\\x.png")),
        messages=(r"{csv}:6: used_image_1_path: ",),
    ),
    Case(
        "number-column-not-a-number",
        with_rows(gen_row("j9", "failed", generation_duration_s="fast")),
        messages=(r"{csv}:6: generation_duration_s: .*'fast'",),
    ),
    Case(
        "several-bad-cells-all-listed",
        with_rows(gen_row("j9", "finished", generation_end="never"), gen_row("../x")),
        messages=(r"{csv}:6: generation_end: ", r"{csv}:6: status: ", r"{csv}:7: job_id: "),
    ),
    Case(
        "table-is-a-directory",
        table_is_a_directory,
        messages=(r"{csv}.*folder",),
    ),
    Case(
        "old-mac-cr-line-endings",
        replace_table(base_table().replace(b"\n", b"\r")),
        messages=(r"{csv}:1\b",),
    ),
]

# ----------------------------------------------------------------------------------- the corpus: ids and options


def cli_id_case(name: str, run_id: str, message: str = "invalid run_id") -> Case:
    return Case(f"cli-run-id-{name}", build_base, run_id=run_id, messages=(message,), creates_nothing=True)


def option_case(name: str, *args: str, message: str) -> Case:
    return Case(f"option-{name}", build_base, args=args, messages=(message,), creates_nothing=True)


CLI_CASES = [
    cli_id_case("dotdot-x", "../x"),
    cli_id_case("a-slash-b", "a/b"),
    cli_id_case("empty", ""),
    cli_id_case("129-chars", LONG_ID),
    cli_id_case("dot", "."),
    cli_id_case("dotdot", ".."),
    cli_id_case("space", "run a"),
    cli_id_case("backslash", "a\\b"),
    cli_id_case("non-ascii", "rün"),
    cli_id_case("128-chars-is-valid-but-unknown", LONGEST_ID, "unknown run"),
    option_case("only-status-bogus", "--only-status", "done", message="--only-status"),
    option_case("only-status-empty", "--only-status", ",", message="--only-status"),
    option_case("only-status-one-bad-of-two", "--only-status", "completed,Failed", message="--only-status"),
    option_case("stale-policy-bogus", "--stale-policy", "bogus", message="--stale-policy"),
    option_case("max-rows-negative", "--max-rows", "-1", message="--max-rows"),
    option_case("max-rows-not-a-number", "--max-rows", "ten", message="--max-rows"),
    option_case("heartbeat-timeout-negative", "--heartbeat-timeout", "-5", message="--heartbeat-timeout"),
    option_case("lock-timeout-negative", "--lock-timeout", "-1", message="--lock-timeout"),
    option_case("lock-timeout-not-a-number", "--lock-timeout", "soon", message="--lock-timeout"),
]

# ----------------------------------------------------------------------------------- the corpus: runs and manifests


def unknown_run(ws: Path) -> None:
    build_base(ws)


def run_folder_missing(ws: Path) -> None:
    build_base(ws)
    shutil.rmtree(ws / "runs" / RUN)


def layout_file(*parts: str) -> Build:
    """A folder of the layout that is a regular file (issue 13, 7: `state` as a file read as "no markers")."""

    def build(ws: Path) -> None:
        build_base(ws)
        path = ws.joinpath(*parts)
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a folder")

    return build


def outputs_link_to_nowhere(ws: Path) -> None:
    """Outputs on a disk that is not mounted: no evidence at all would downgrade every completed job."""
    build_base(ws)
    outputs = ws / "runs" / RUN / "outputs"
    shutil.rmtree(outputs)
    outputs.symlink_to(ws.parent / "unmounted-disk" / "outputs")


def write_manifest_bytes(data: bytes) -> Build:
    def build(ws: Path) -> None:
        build_base(ws)
        (ws / "runs" / RUN / "manifest.csv").write_bytes(data)

    return build


def manifest_is_a_directory(ws: Path) -> None:
    build_base(ws)
    path = ws / "runs" / RUN / "manifest.csv"
    path.unlink()
    path.mkdir()


RUN_CASES = [
    Case("run-does-not-exist", unknown_run, run_id="no-such-run", messages=("unknown run",), creates_nothing=True),
    Case(
        "run-folder-missing-while-the-csv-has-rows",
        run_folder_missing,
        messages=(r"{run_dir}.*missing",),
        creates_nothing=True,
    ),
    Case(
        "manifest-missing-columns",
        write_manifest_bytes(b"job_id,product_id\nj1,pj1\n"),
        messages=(r"{manifest}:1: (variant|algo): ",),
    ),
    Case(
        "manifest-bad-job_id",
        write_manifest_bytes(b"job_id,product_id,variant,algo\nj1,pj1,oak,trellis\n../x,p,oak,trellis\n"),
        messages=(r"{manifest}:3: job_id: ",),
    ),
    Case(
        "manifest-job_id-129-chars",
        write_manifest_bytes(b"job_id,product_id,variant,algo\n" + LONG_ID.encode() + b",p,oak,trellis\n"),
        messages=(r"{manifest}:2: job_id: ",),
    ),
    Case(
        "manifest-ragged-row",
        write_manifest_bytes(b"job_id,product_id,variant,algo\nj1,pj1,oak,trellis\nj2,pj2\n"),
        messages=(r"{manifest}:3\b.*fields",),
    ),
    Case("manifest-0-byte", write_manifest_bytes(b""), messages=(r"{manifest}:1\b",)),
    Case(
        "manifest-non-utf8",
        write_manifest_bytes(b"job_id,product_id,variant,algo\nj1,p\xe9,oak,trellis\n"),
        messages=(r"{manifest}:2\b",),
    ),
    Case("manifest-is-a-directory", manifest_is_a_directory, messages=(r"{manifest}.*folder",)),
    Case("state-is-a-file", layout_file("runs", RUN, "state"), messages=(r"{run_dir}/state: not a folder",)),
    Case("outputs-is-a-file", layout_file("runs", RUN, "outputs"), messages=(r"{run_dir}/outputs: not a folder",)),
    Case("run-folder-is-a-file", layout_file("runs", RUN), messages=(r"{run_dir}: not a folder",)),
    Case("runs-is-a-file", layout_file("runs"), messages=(r"{ws}/runs: not a folder",)),
    Case("tables-is-a-file", layout_file("tables"), messages=(r"{ws}/tables: not a folder",)),
    Case("logs-is-a-file", layout_file("logs"), messages=(r"{ws}/logs: not a folder",)),
    Case(
        "outputs-link-to-nowhere",
        outputs_link_to_nowhere,
        messages=(r"{run_dir}/outputs: a link to .*unmounted-disk/outputs, which is not a folder",),
    ),
]

# ----------------------------------------------------------------------------------- the corpus: evidence on disk

T = ago(777)  # the mtime given to markers whose content has no usable time


def failed_marker_with(content: bytes) -> Build:
    def build(ws: Path) -> None:
        build_base(ws)
        path = state_file(ws, "j2.failed", content)
        set_mtime(path, T)

    return build


def failed_at(moment: dt.datetime, **more: str) -> dict[str, str]:
    """j2 after a .failed marker of time `moment` (no object, no log event): start = end = that time."""
    return {
        "status": "failed",
        "generation_start": iso(moment),
        "generation_end": iso(moment),
        "generation_duration_s": "0.000",
        **more,
    }


def notes_quote(moment: dt.datetime) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        _, rows = parse_rows(outcome.after or b"")
        notes = next(r["notes"] for r in rows if r["job_id"] == "j2")
        assert iso(moment) in notes, notes  # the reason quotes the evidence time

    return check


def marker_case(name: str, content: bytes, moment: dt.datetime = T) -> Case:
    return Case(
        f"marker-{name}",
        failed_marker_with(content),
        exit_code=0,
        changed={"j2": failed_at(moment)},
        check=notes_quote(moment),
    )


S = ago(5000)  # a timestamp written inside a marker


MARKER_CASES = [
    marker_case("empty", b""),
    marker_case("garbage-bytes", b"\x00\xff\xfegarbage\n\x1b[2J not a marker at all\n"),
    marker_case("reference-bad-timestamp", b"timestamp: not-a-time\npid: 77\n"),
    marker_case("reference-impossible-date", b"timestamp: 2026-02-30T10:00:00\npid: 77\n"),
    marker_case("reference-no-timestamp-line", b"pid: 77\nhost: gpu-3\n"),
    marker_case("json-without-timestamp", b'{"pid": 77}'),
    marker_case("json-bad-timestamp", b'{"timestamp": "yesterday", "pid": 77}'),
    marker_case("json-number-timestamp", b'{"timestamp": 1767225600}'),
    marker_case("json-not-an-object", b"[1, 2, 3]"),
    marker_case("json-truncated", b'{"timestamp": "2026-01-'),
    marker_case("json-with-timestamp", json.dumps({"timestamp": iso(S), "pid": 77}).encode(), S),
    marker_case("reference-with-timestamp", f"timestamp: {iso(S)}\npid: 77\n".encode(), S),
    marker_case(
        "reference-naive-timestamp-is-utc",
        f"timestamp: {S.replace(tzinfo=None).isoformat()}\npid: 77\n".encode(),
        S,
    ),
    marker_case(
        "reference-other-offset",
        f"timestamp: {S.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).isoformat()}\n".encode(),
        S,
    ),
]


def future_heartbeat(ws: Path) -> None:
    build_base(ws)
    state_file(ws, "j2.inprogress", b"timestamp: 2999-01-01T00:00:00+00:00\npid: 5\n")


def check_fresh_heartbeat(outcome: Outcome) -> None:
    _, rows = parse_rows(outcome.after or b"")
    notes = next(r["notes"] for r in rows if r["job_id"] == "j2")
    assert "2999-01-01T00:00:00+00:00" in notes and "fresh" in notes, notes


def error_file(raw: bytes) -> Build:
    def build(ws: Path) -> None:
        build_base(ws)
        marker(ws, "j2", "failed", ago(50))
        error_txt(ws, "j2", "", raw=raw)

    return build


BINARY_ERROR = b"Error: \xff\xfe bad \x00 nul \r lone cr \r\n crlf \x1b[31m \xc3\x28 \xed\xa0\x80 end\n" + bytes(
    range(256)
)


def huge_error_txt(ws: Path) -> None:
    build_base(ws)
    marker(ws, "j2", "failed", ago(50))
    path = error_txt(ws, "j2", "", raw=b"Error: CUDA out of memory \xe2\x80\x94 ")
    chunk = "ü€x".encode() * (1 << 18)  # 1.5 MiB of 1-, 2- and 3-byte characters
    with open(path, "ab") as handle:
        while handle.tell() < 100 * 1024 * 1024:
            handle.write(chunk)


def huge_error_expected() -> str:
    text = "Error: CUDA out of memory — " + "ü€x" * 700
    return text[:2000] + TRUNCATED


def check_quick_and_clean_up(outcome: Outcome) -> None:
    assert outcome.elapsed < 10, f"100 MB error.txt took {outcome.elapsed:.1f} s: the read is not bounded"
    (outcome.ws / "runs" / RUN / "state" / "j2.error.txt").unlink()  # 100 MB need not outlive the check


def leftover_error_beside_completed(ws: Path) -> None:
    build_base(ws)
    error_txt(ws, "j1", "old failure before --redo")


def symlink_object_outside(ws: Path) -> None:
    build_base(ws)
    outside = ws.parent / f"{ws.name}-outside"
    outside.mkdir()
    (outside / "stolen.glb").write_bytes(GLB)
    target = ws / rel_output("j1")
    target.unlink()
    target.symlink_to(outside / "stolen.glb")


def symlink_job_folder_outside(ws: Path) -> None:
    build_base(ws)
    outside = ws.parent / f"{ws.name}-outside"
    shutil.move(str(ws / "runs" / RUN / "outputs" / "j1"), str(outside))
    (ws / "runs" / RUN / "outputs" / "j1").symlink_to(outside, target_is_directory=True)


def symlink_object_out_of_its_folder(ws: Path) -> None:
    """A link in a job's folder counts only if it resolves inside that folder (here: elsewhere in the workspace)."""
    build_base(ws)
    shared = ws / "shared" / "j1.glb"
    shared.parent.mkdir()
    target = ws / rel_output("j1")
    shutil.move(str(target), str(shared))
    target.symlink_to(os.path.relpath(shared, target.parent))


def symlink_object_inside_its_folder(ws: Path) -> None:
    build_base(ws)
    target = ws / rel_output("j1")
    shutil.move(str(target), str(target.with_name("model_v2.glb")))
    target.symlink_to("model_v2.glb")


def dangling_symlink_object(ws: Path) -> None:
    build_base(ws)
    target = ws / rel_output("j1")
    target.unlink()
    target.symlink_to(ws / "nowhere.glb")


def folder_named_generated_glb(ws: Path) -> None:
    build_base(ws)
    target = ws / rel_output("j1")
    target.unlink()
    target.mkdir()
    (target / "mesh.bin").write_bytes(GLB)


def zero_byte_object(ws: Path) -> None:
    build_base(ws)
    (ws / rel_output("j1")).write_bytes(b"")


def previews_not_png(ws: Path) -> None:
    build_base(ws)
    output(ws, "j1", "preview_1.png", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 a jpeg saved as .png")
    output(ws, "j1", "preview_2.png", b"")
    output(ws, "j1", "preview_3.png", PNG)


def check_invalid_previews(outcome: Outcome) -> None:
    assert outcome.record is not None and outcome.record["invalid_previews"] == 2


def metadata_bytes(data: bytes) -> Build:
    def build(ws: Path) -> None:
        build_base(ws)
        (ws / "runs" / RUN / "outputs" / "j1" / "metadata.json").write_bytes(data)

    return build


def object_named(name: bytes, link: bool = False) -> Build:
    """A completed job whose object's file name is these bytes (a link to a file beside it, if `link`)."""

    def build(ws: Path) -> None:
        build_base(ws)
        marker(ws, "j2", "completed", J1_END)
        folder = ws / "runs" / RUN / "outputs" / "j2"
        folder.mkdir(parents=True, exist_ok=True)
        named = Path(os.fsdecode(os.fsencode(folder) + b"/" + name))
        if link:
            (folder / "model.bin").write_bytes(GLB)
            named.symlink_to("model.bin")
        else:
            named.write_bytes(GLB)

    return build


def check_no_metadata_conflict(outcome: Outcome) -> None:
    assert outcome.record is not None
    assert [c for c in outcome.record["conflicts"] if c["kind"] == "metadata_mismatch"] == []


FAILED_50_S_AGO = ago(50)


def worker_log(lines: bytes, failed_at: dt.datetime = FAILED_50_S_AGO) -> Build:
    def build(ws: Path) -> None:
        build_base(ws)
        marker(ws, "j2", "failed", failed_at)
        (ws / "logs").mkdir(exist_ok=True)
        (ws / "logs" / "worker.log").write_bytes(lines)

    return build


EVENT_END = ago(200)
GARBAGE_LOG = b"".join(
    [
        b"not a log line at all\n",
        b"\x00\xff\xfe binary \xc3\x28 junk\n",
        b"2026-03-01T10:00:00+00:00\n",  # no JSON
        b"2026-03-01T10:00:00+00:00 {truncated json\n",
        b'yesterday {"event":"job_failed","run_id":"run-a","job_id":"j2","duration_s":1}\n',  # bad time
        b'2026-03-01T10:00:00+00:00 ["job_failed","run-a","j2"]\n',  # JSON, not an object
        b'2026-03-01T10:00:00+00:00 {"event":"job_failed","run_id":"run-a","job_id":7}\n',  # job_id not text
        b'2026-03-01T10:00:00+00:00 {"event":"job_failed","run_id":"run-a","job_id":"j2","duration_s":"x"}\n'[:40]
        + b"\n",
        b'2026-03-01T10:00:00+00:00 {"event":"job_exploded","run_id":"run-a","job_id":"j2"}\n',
        iso(EVENT_END).encode()
        + b' {"event":"job_failed","run_id":"run-a","job_id":"j2","duration_s":30,"error":"CUDA"}\n',
        b"\n\n   \n",
        b'2026-03-01T10:00:00+00:00 {"event":"job_failed","run_id":"run-a","job_id":"j2"',  # cut, no newline
    ]
)


def worker_log_is_a_directory(ws: Path) -> None:
    build_base(ws)
    marker(ws, "j2", "failed", ago(50))
    (ws / "logs" / "worker.log").mkdir(parents=True)


def backslash_paths(ws: Path) -> None:
    build_base(ws)
    rows = base_rows()
    rows[0]["gen_object_path"] = rel_output("j1").replace("/", "\\")
    write_table(ws, rows)


def blank_lines_between_rows(ws: Path) -> None:
    build_base(ws)
    write_table_bytes(ws, base_table().replace(b"\npj2,", b"\n\n\r\n\npj2,"))
    marker(ws, "j2", "failed", ago(50))


def check_blank_lines_kept(outcome: Outcome) -> None:
    assert outcome.after is not None and b"\n\n\r\n\n" in outcome.after


def newline_style(newline: str, bom: bool) -> Build:
    def build(ws: Path) -> None:
        build_base(ws)
        write_table_bytes(ws, base_table(newline, bom))
        marker(ws, "j2", "failed", ago(50))

    return build


def check_format(newline: bytes, bom: bool) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert outcome.after is not None
        assert outcome.after.startswith(BOM) == bom
        body = outcome.after[len(BOM) if bom else 0 :]
        if newline == b"\r\n":
            assert body.count(b"\n") == body.count(b"\r\n") == 5  # every line ending kept CRLF
        else:
            assert b"\r" not in body and body.count(b"\n") == 5

    return check


J2_FAILED = {"j2": failed_at(ago(50))}


def header_only(ws: Path) -> None:
    build_base(ws)
    write_table_bytes(ws, encode_csv([], newline="\r\n"))


def check_header_only(outcome: Outcome) -> None:
    assert outcome.before is not None and outcome.after is not None
    assert outcome.after.startswith(outcome.before)  # the header keeps its bytes (BOM, CRLF)
    header, rows = parse_rows(outcome.after)
    assert header == list(TABLE_COLUMNS)
    assert [(r["run_id"], r["job_id"], r["status"]) for r in rows] == [
        (RUN, "j1", "completed"),
        (RUN, "j2", "enqueued"),
        (RUN, "j3", "enqueued"),
    ]
    assert rows[0]["created_at"] == ""  # nothing written depends on the moment consolidate runs
    assert outcome.after.count(b"\r\n") == 4 and outcome.after.count(b"\n") == 4


EVIDENCE_CASES = [
    *MARKER_CASES,
    Case(
        "marker-timestamp-in-the-future-is-a-fresh-heartbeat",
        future_heartbeat,
        exit_code=0,
        args=("--heartbeat-timeout", "600"),
        changed={"j2": {"status": "running"}},
        check=check_fresh_heartbeat,
    ),
    Case(
        "error-txt-100-MB",
        huge_error_txt,
        exit_code=0,
        changed={"j2": {"status": "failed", "error_msg": huge_error_expected()}},
        check=check_quick_and_clean_up,
    ),
    Case(
        "error-txt-binary",
        error_file(BINARY_ERROR),
        exit_code=0,
        changed={"j2": {"status": "failed", "error_msg": BINARY_ERROR.decode("utf-8", errors="replace")}},
    ),
    Case("error-txt-leftover-beside-completed", leftover_error_beside_completed, exit_code=0),
    Case(
        "object-symlink-pointing-outside",
        symlink_object_outside,
        exit_code=0,
        changed={"j1": {"status": "failed", "error_msg": DOWNGRADE, "gen_object_path": rel_output("j1")}},
    ),
    Case(
        "job-folder-symlink-pointing-outside",
        symlink_job_folder_outside,
        exit_code=0,
        changed={"j1": {"status": "failed", "error_msg": DOWNGRADE, "gen_object_path": rel_output("j1")}},
    ),
    Case(
        "object-symlink-out-of-its-job-folder",
        symlink_object_out_of_its_folder,
        exit_code=0,
        changed={"j1": {"status": "failed", "error_msg": DOWNGRADE}},
    ),
    Case("object-symlink-inside-its-job-folder-is-fine", symlink_object_inside_its_folder, exit_code=0),
    Case(
        "object-dangling-symlink",
        dangling_symlink_object,
        exit_code=0,
        changed={"j1": {"status": "failed", "error_msg": DOWNGRADE}},
    ),
    Case(
        "folder-named-generated-glb",
        folder_named_generated_glb,
        exit_code=0,
        changed={"j1": {"status": "failed", "error_msg": DOWNGRADE, "gen_object_path": rel_output("j1")}},
    ),
    Case(
        "zero-byte-object",
        zero_byte_object,
        exit_code=0,
        changed={"j1": {"status": "failed", "error_msg": DOWNGRADE, "gen_object_path": rel_output("j1")}},
    ),
    Case(
        "previews-not-png",
        previews_not_png,
        exit_code=0,
        changed={
            "j1": {
                "status": "completed",
                "preview_1_path": "",
                "preview_2_path": "",
                "preview_3_path": rel_output("j1", "preview_3.png"),
            }
        },
        check=check_invalid_previews,
    ),
    Case(
        "metadata-json-invalid",
        metadata_bytes(b"{not json"),
        exit_code=0,
        check=check_no_metadata_conflict,
    ),
    Case("metadata-json-a-list", metadata_bytes(b"[]"), exit_code=0, check=check_no_metadata_conflict),
    Case("metadata-json-binary", metadata_bytes(b"\x89\xff\x00\x01"), exit_code=0, check=check_no_metadata_conflict),
    Case(
        "object-name-not-utf8",
        object_named(b"model-\xff.glb"),
        messages=(r"outputs/j2/model-.*\.glb: the file name is not UTF-8.*Nothing was changed",),
    ),
    Case(
        "object-link-name-not-utf8",
        object_named(b"model-\xff.glb", link=True),
        messages=(r"outputs/j2/model-.*\.glb: the file name is not UTF-8.*Nothing was changed",),
    ),
    Case(
        "worker-log-garbage-lines-ignored",
        worker_log(GARBAGE_LOG),
        exit_code=0,
        changed={
            "j2": {
                "status": "failed",
                "generation_end": iso(EVENT_END),
                "generation_start": iso(EVENT_END - dt.timedelta(seconds=30)),
                "generation_duration_s": "30.000",
            }
        },
    ),
    Case(
        "worker-log-is-a-directory",
        worker_log_is_a_directory,
        exit_code=0,
        changed={"j2": failed_at(ago(50))},
    ),
    Case(
        "backslash-path-becomes-posix",
        backslash_paths,
        exit_code=0,
        changed={"j1": {"status": "completed", "gen_object_path": rel_output("j1")}},
    ),
    Case(
        "blank-lines-between-rows-kept",
        blank_lines_between_rows,
        exit_code=0,
        changed={"j2": failed_at(ago(50))},
        check=check_blank_lines_kept,
    ),
    Case(
        "table-with-bom-keeps-it",
        newline_style("\n", True),
        exit_code=0,
        changed=J2_FAILED,
        check=check_format(b"\n", True),
    ),
    Case(
        "table-without-bom-stays-so",
        newline_style("\n", False),
        exit_code=0,
        changed=J2_FAILED,
        check=check_format(b"\n", False),
    ),
    Case(
        "crlf-line-endings-kept",
        newline_style("\r\n", True),
        exit_code=0,
        changed=J2_FAILED,
        check=check_format(b"\r\n", True),
    ),
    Case(
        "header-only-table-is-fine",
        header_only,
        exit_code=0,
        inserted=("j1", "j2", "j3"),
        check=check_header_only,
    ),
]

ALL_CASES = [*TABLE_CASES, *CLI_CASES, *RUN_CASES, *EVIDENCE_CASES]


def test_the_corpus_is_large_and_its_names_unique() -> None:
    names = [c.id for c in ALL_CASES]
    assert len(names) == len(set(names))
    assert len(names) >= 30


def test_the_base_workspace_is_a_fixed_point(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    before = table_bytes(ws)
    result = CliRunner().invoke(app, ["consolidate", "--workspace", str(ws), "--run-id", RUN, "--json"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["upsert_updated"], record["upsert_inserted"], record["unchanged"]) == (0, 0, 3)
    assert table_bytes(ws) == before


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in ALL_CASES])
def test_bad_input(tmp_path: Path, case: Case) -> None:
    ws = tmp_path / "ws"
    case.build(ws)
    before = snapshot(ws) if case.exit_code != 0 else {}
    existed = ws.exists()
    outcome = invoke(ws, case)
    if case.exit_code == 0:
        check_documented(case, outcome)
    else:
        check_exit_2(case, outcome, before)
        assert ws.exists() == existed


def test_a_workspace_that_does_not_exist_is_named_and_nothing_is_created(tmp_path: Path) -> None:
    ws = tmp_path / "nowhere" / "ws"
    result = CliRunner().invoke(app, ["consolidate", "--workspace", str(ws), "--run-id", RUN])
    assert result.exit_code == 2
    assert result.stderr == f"error: workspace {ws}: not found\n"
    assert list(tmp_path.iterdir()) == []


def test_a_workspace_that_is_a_file_is_named(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.write_text("not a folder")
    result = CliRunner().invoke(app, ["consolidate", "--workspace", str(ws), "--run-id", RUN])
    assert result.exit_code == 2
    assert result.stderr == f"error: workspace {ws}: is not a folder\n"
    assert ws.read_text() == "not a folder"


# ----------------------------------------------------------------------------------- unreadable files and folders


def consolidate_args(ws: Path, *extra: str) -> list[str]:
    return ["consolidate", "--workspace", str(ws), "--run-id", RUN, "--json", *extra]


def assert_unreadable_folder_handled(ws: Path, code: int, stderr: str, before: bytes, folder: Path) -> None:
    """A job folder that cannot be read is no evidence of a missing object.

    Either consolidate refuses (exit 2, naming the folder, table untouched) or it leaves that job's row
    alone; what it must not do is downgrade a completed job whose object it could not look for.
    """
    assert "Traceback" not in stderr, stderr
    after = table_bytes(ws)
    if code == 2:
        assert str(folder) in stderr, stderr
        assert after == before
        return
    assert code == 0, stderr
    _, rows_before = parse_rows(before)
    _, rows_after = parse_rows(after)
    j1_before = next(r for r in rows_before if r["job_id"] == "j1")
    j1_after = next(r for r in rows_after if r["job_id"] == "j1")
    assert j1_after == j1_before, "a completed job whose folder could not be read was changed"


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_unreadable_job_folder_chmod_000(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    folder = ws / "runs" / RUN / "outputs" / "j1"
    before = table_bytes(ws)
    folder.chmod(0)
    try:
        result = CliRunner().invoke(app, consolidate_args(ws))
    finally:
        folder.chmod(0o755)
    assert_unreadable_folder_handled(ws, result.exit_code, result.stderr, before, folder)


def test_unreadable_job_folder_simulated(tmp_path: Path) -> None:
    """chmod 000 does not stop root: the wrapper makes the folder behave as mode 000 does for a user."""
    ws = tmp_path / "ws"
    build_base(ws)
    folder = ws / "runs" / RUN / "outputs" / "j1"
    before = table_bytes(ws)
    proc = run_archi3d(consolidate_args(ws), env={DENY_ENV: str(folder)}, wrapped=True, timeout=60)
    assert_unreadable_folder_handled(ws, proc.returncode, proc.stderr, before, folder)


def test_the_simulation_of_an_unreadable_folder_denies_reads(tmp_path: Path) -> None:
    """The wrapper really behaves like a mode-000 folder (so the test above tests what it says)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "x").write_text("secret")
    probe = (
        "import os, sys\n"
        "try:\n    os.scandir(sys.argv[1])\nexcept PermissionError:\n    print('scandir denied')\n"
        "try:\n    open(os.path.join(sys.argv[1], 'x'))\nexcept PermissionError:\n    print('open denied')\n"
        "try:\n    os.stat(os.path.join(sys.argv[1], 'x'))\nexcept PermissionError:\n    print('stat denied')\n"
        "print('folder stat ok' if os.stat(sys.argv[1]) else '')\n"
    )
    from reliability_support import WRAPPER

    wrapper = WRAPPER.split("import archi3d.cli")[0]
    proc = subprocess.run(
        [sys.executable, "-c", wrapper + probe, str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, DENY_ENV: str(folder)},
    )
    assert proc.stdout.split("\n")[:4] == ["scandir denied", "open denied", "stat denied", "folder stat ok"], proc


def test_unreadable_table_simulated(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    before = snapshot(ws)
    proc = run_archi3d(consolidate_args(ws), env={DENY_FILES_ENV: str(csv_path(ws))}, wrapped=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"{csv_path(ws)}: cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    assert without_logs(snapshot(ws)) == without_logs(before)


def test_unreadable_run_folder_simulated(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    before = snapshot(ws)
    folder = ws / "runs" / RUN
    proc = run_archi3d(consolidate_args(ws), env={DENY_ENV: str(folder)}, wrapped=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert str(folder) in proc.stderr
    assert without_logs(snapshot(ws)) == without_logs(before)


def test_unreadable_tables_folder_simulated(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    before = snapshot(ws)
    proc = run_archi3d(consolidate_args(ws), env={DENY_ENV: str(ws / "tables")}, wrapped=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert str(ws / "tables") in proc.stderr
    assert without_logs(snapshot(ws)) == without_logs(before)


# ----------------------------------------------------------------------------------- evidence that breaks the scan


def run_cli(ws: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, consolidate_args(ws, *extra))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return 1, result.stdout, "Traceback (in-process)\n" + repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def row_of(ws: Path, job_id: str) -> dict[str, str]:
    _, rows = parse_rows(table_bytes(ws))
    return next(r for r in rows if r["job_id"] == job_id and r["run_id"] == RUN)


def test_object_through_a_folder_symlink_pointing_outside_is_not_accepted(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    shutil.rmtree(ws / "runs" / RUN / "outputs" / "j1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.glb").write_bytes(GLB)
    (ws / "runs" / RUN / "outputs" / "legacy").symlink_to(outside, target_is_directory=True)
    rows = base_rows()
    rows[0]["gen_object_path"] = f"runs/{RUN}/outputs/legacy/x.glb"
    write_table(ws, rows)
    code, _, err = run_cli(ws)
    assert code == 0, err
    j1 = row_of(ws, "j1")
    assert (j1["status"], j1["error_msg"]) == ("failed", DOWNGRADE)
    assert j1["gen_object_path"] == f"runs/{RUN}/outputs/legacy/x.glb"


def assert_valid_or_refused_naming(ws: Path, code: int, err: str, before: bytes, culprit: Path) -> None:
    """Evidence holding an unusable value: used as if absent (exit 0, valid table), or refused naming it."""
    assert "Traceback" not in err, err
    if code == 2:
        assert str(culprit) in err, f"the message blames something else than {culprit}: {err}"
        assert table_bytes(ws) == before
        return
    assert code == 0, err
    read_csv_table(csv_path(ws), validate_generations)


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param("2999-12-31T00:00:00+00:00", id="year-2999-in-range"),
        pytest.param("9999-01-01T00:00:00", id="year-9999"),
        pytest.param("3000-01-01T00:00:00+00:00", id="year-3000"),
        pytest.param("0001-01-01T00:00:00", id="year-1"),
        pytest.param("1899-12-31T23:59:59+00:00", id="year-1899"),
    ],
)
def test_marker_timestamp_out_of_the_tables_range(tmp_path: Path, stamp: str) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    path = state_file(ws, "j2.failed", f"timestamp: {stamp}\npid: 9\n".encode())
    set_mtime(path, T)
    before = table_bytes(ws)
    code, _, err = run_cli(ws)
    assert_valid_or_refused_naming(ws, code, err, before, path)
    if code == 0:
        j2 = row_of(ws, "j2")
        assert j2["status"] == "failed"
        expected = stamp if stamp.startswith("2999") else iso(T)  # an unusable time counts as none: the mtime
        assert j2["generation_end"] == expected


@pytest.mark.parametrize(
    "duration, event_time",
    [
        pytest.param("0", iso(ago(200)), id="zero"),
        pytest.param("-5", iso(ago(200)), id="negative-ignored"),
        pytest.param("NaN", iso(ago(200)), id="nan-ignored"),
        pytest.param("Infinity", iso(ago(200)), id="infinity"),
        pytest.param("1e30", iso(ago(200)), id="1e30"),
        pytest.param("1e10", iso(ago(200)), id="1e10-before-1900"),
        pytest.param("30", "9999-01-01T00:00:00+00:00", id="event-in-year-9999"),
    ],
)
def test_worker_log_values_out_of_range(tmp_path: Path, duration: str, event_time: str) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    marker(ws, "j2", "failed", ago(50))
    log = ws / "logs" / "worker.log"
    log.parent.mkdir()
    log.write_text(
        f'{event_time} {{"event":"job_failed","run_id":"{RUN}","job_id":"j2","duration_s":{duration}}}\n',
        encoding="utf-8",
    )
    before = table_bytes(ws)
    code, _, err = run_cli(ws)
    assert_valid_or_refused_naming(ws, code, err, before, log)
    if code == 0:
        j2 = row_of(ws, "j2")
        assert j2["status"] == "failed"
        start, end = dt.datetime.fromisoformat(j2["generation_start"]), dt.datetime.fromisoformat(j2["generation_end"])
        assert start <= end


NESTED = b'{"a":' + b"[" * 100_000


def nested_marker(ws: Path) -> Path:
    path = state_file(ws, "j2.failed", NESTED[:4000])  # markers are read 4 KiB at most
    set_mtime(path, T)
    return path


def nested_metadata(ws: Path) -> Path:
    path = ws / "runs" / RUN / "outputs" / "j1" / "metadata.json"
    path.write_bytes(NESTED)
    return path


def nested_log_line(ws: Path) -> Path:
    path = ws / "logs" / "worker.log"
    path.parent.mkdir()
    path.write_bytes(iso(ago(10)).encode() + b' {"run_id":"run-a","event":"job_failed","x":' + b"[" * 100_000 + b"\n")
    return path


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(nested_marker, id="marker"),
        pytest.param(nested_metadata, id="metadata-json"),
        pytest.param(nested_log_line, id="worker-log-line"),
    ],
)
def test_deeply_nested_json_is_garbage_not_a_crash(tmp_path: Path, plant: Callable[[Path], Path]) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    culprit = plant(ws)
    before = table_bytes(ws)
    code, _, err = run_cli(ws)
    assert_valid_or_refused_naming(ws, code, err, before, culprit)
    assert row_of(ws, "j1")["status"] == "completed"


# ----------------------------------------------------------------------------------- files consolidate writes


def test_metrics_log_that_is_a_folder(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    marker(ws, "j2", "failed", ago(50))
    (ws / "logs" / "metrics.log").mkdir(parents=True)
    code, _, err = run_cli(ws)
    assert "Traceback" not in err, err
    assert code in (2, 3), err
    assert str(ws / "logs" / "metrics.log") in err
    read_csv_table(csv_path(ws), validate_generations)


def test_lock_file_that_is_a_folder(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    build_base(ws)
    marker(ws, "j2", "failed", ago(50))
    (ws / "tables" / "generations.lock").mkdir()
    before = table_bytes(ws)
    code, _, err = run_cli(ws, "--lock-timeout", "1")
    assert "Traceback" not in err, err
    assert code in (2, 3), err
    assert str(ws / "tables" / "generations.lock") in err
    assert table_bytes(ws) == before


def test_dry_run_ignores_a_lock_file_that_is_a_folder(tmp_path: Path) -> None:
    """Reads need no lock: a dry run does not even look at it."""
    ws = tmp_path / "ws"
    build_base(ws)
    marker(ws, "j2", "failed", ago(50))
    (ws / "tables" / "generations.lock").mkdir()
    before = table_bytes(ws)
    code, out, err = run_cli(ws, "--dry-run")
    assert code == 0, err
    assert json.loads(out)["upsert_updated"] == 1
    assert table_bytes(ws) == before


# ----------------------------------------------------------------------------------- named pipes

FIFO_TIMEOUT = 30.0
FIFO_GRACE = 3.0
CONTROL = "preview-png"
FIFOS: dict[str, str] = {
    "error-txt": f"runs/{RUN}/state/j2.error.txt",
    "failed-marker": f"runs/{RUN}/state/j2.failed",
    "metadata-json": f"runs/{RUN}/outputs/j1/metadata.json",
    "worker-log": "logs/worker.log",
    "preview-png": f"runs/{RUN}/outputs/j1/preview_1.png",
}


@dataclasses.dataclass
class FifoRun:
    ws: Path
    culprit: Path
    before: bytes
    code: int | None
    stderr: str


@pytest.fixture(scope="module")
def fifo_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FifoRun]]:
    """consolidate on one workspace per planted named pipe, all at once, so that waiting for hangs costs little."""
    from reliability_support import start_archi3d

    runs: dict[str, FifoRun] = {}
    procs: dict[str, subprocess.Popen[str]] = {}
    started = time.monotonic()
    for name, rel in FIFOS.items():
        ws = tmp_path_factory.mktemp(f"fifo-{name}") / "ws"
        build_base(ws)
        if name != "failed-marker":
            marker(ws, "j2", "failed", ago(50))
        culprit = ws / rel
        culprit.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(culprit)
        runs[name] = FifoRun(ws, culprit, table_bytes(ws), None, "")
        procs[name] = start_archi3d(consolidate_args(ws))
    try:
        # A run that is not stuck takes about as long as the control (a pipe named preview_1.png, which
        # need not be opened): the others get that long plus a margin, then count as hung.
        with contextlib.suppress(subprocess.TimeoutExpired):
            procs[CONTROL].wait(timeout=FIFO_TIMEOUT)
        deadline = min(started + FIFO_TIMEOUT, time.monotonic() + FIFO_GRACE)
        for name, proc in procs.items():
            try:
                _, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
                runs[name].code, runs[name].stderr = proc.returncode, err
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate(timeout=30)
                runs[name].stderr = (
                    err + f"\n(still running {time.monotonic() - started:.1f} s after its start: killed)"
                )
        yield runs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("name", list(FIFOS))
def test_a_named_pipe_among_the_evidence_does_not_hang(fifo_runs: dict[str, FifoRun], name: str) -> None:
    found = fifo_runs[name]
    assert found.code is not None, f"{name}: consolidate hung on a named pipe: {found.stderr}"
    assert_valid_or_refused_naming(found.ws, found.code, found.stderr, found.before, found.culprit)


@pytest.mark.parametrize("sub", ["outputs", "state"])
def test_unreadable_outputs_or_state_folder_is_refused_not_read_as_empty(tmp_path: Path, sub: str) -> None:
    """Read as empty, an unreadable outputs/ would downgrade every completed job of the run."""
    ws = tmp_path / "ws"
    build_base(ws)
    before = snapshot(ws)
    folder = ws / "runs" / RUN / sub
    proc = run_archi3d(consolidate_args(ws), env={DENY_ENV: str(folder)}, wrapped=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert f"{folder}: cannot be read" in proc.stderr
    assert without_logs(snapshot(ws)) == without_logs(before)
