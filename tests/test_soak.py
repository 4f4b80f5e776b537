"""Issue 7 soaks (marked `soak`, left out of the default run; `make soak` or `pytest -m soak`).

- crash: `archi3d consolidate` on a 5,000-job demo run is killed with SIGKILL at random moments, half
  of them once its temp file has appeared (inside the write). After every kill the table parses,
  validates, and is byte for byte the state before or the state after a completed run.
- concurrency: consolidate runs in a loop while 4 writer processes upsert rows of the same run and of
  other runs through update_csv_atomic for 30 s (once more while another process deletes the table's lock
  file every 3 ms), each writing a counter into `fscore`, a column
  consolidate does not decide, and jobs of the run finish meanwhile (new .failed markers), so that
  consolidate has rows to write on every pass. At the end every writer's last value of every key is
  in the table, no row is lost or duplicated, and every row is what consolidate alone makes of the
  original table and the final evidence (fscore aside).

Both print their figures (run with -s to see them, or read the `soak figures` lines).
Environment knobs: SOAK_KILLS (default 50), SOAK_JOBS (5000), SOAK_SECONDS (30), SOAK_WRITERS (4).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from archi3d.csvtable import read_csv_table
from archi3d.demo import build_demo_workspace
from archi3d.schema import validate_generations
from reliability_support import clean_env, parse_rows, pid_alive, run_archi3d, start_archi3d, temp_files

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fcntl locks are POSIX"),
]

KILLS = int(os.environ.get("SOAK_KILLS", "50"))
JOBS = int(os.environ.get("SOAK_JOBS", "5000"))
SECONDS = float(os.environ.get("SOAK_SECONDS", "30"))
WRITERS = int(os.environ.get("SOAK_WRITERS", "4"))
HEARTBEAT = "86400"
"""--heartbeat-timeout: the demo's fresh heartbeats carry the build time and stay fresh for a day, its stale
ones are weeks old, so which heartbeats count as stale does not change while the soak runs: the after-state
does not depend on the clock."""


def report(capsys: pytest.CaptureFixture[str], title: str, figures: dict[str, Any]) -> None:
    with capsys.disabled():
        print(f"\nsoak figures: {title}: {json.dumps(figures, sort_keys=True)}", flush=True)


def consolidate_args(ws: Path, run_id: str, *extra: str) -> list[str]:
    return ["consolidate", "--workspace", str(ws), "--run-id", run_id, "--heartbeat-timeout", HEARTBEAT, *extra]


def restore(path: Path, data: bytes) -> None:
    """Put the before-state back, on disk."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


# ----------------------------------------------------------------------------------- crash


def test_consolidate_killed_at_random_moments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started_all = time.monotonic()
    ws = tmp_path / "ws"
    demo = build_demo_workspace(ws, jobs=JOBS, seed=7)
    built_in = time.monotonic() - started_all
    table = ws / "tables" / "generations.csv"
    tables = table.parent
    before = table.read_bytes()
    command = consolidate_args(ws, demo.run_id)

    # The after-state: a completed run on the same evidence (consolidate only reads it), timed, watching for
    # the moment its temp file appears and the moment it is replaced.
    t0 = time.monotonic()
    proc = start_archi3d(command)
    temp_at = replaced_at = None
    while proc.poll() is None:
        names = temp_files(tables)
        now = time.monotonic() - t0
        if names and temp_at is None:
            temp_at = now
        if temp_at is not None and replaced_at is None and not names:
            replaced_at = now
        time.sleep(0.0005)
    full_run = time.monotonic() - t0
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    after = table.read_bytes()
    assert after != before
    assert temp_at is not None, "the temp file was never seen"
    replaced_at = replaced_at if replaced_at is not None else full_run
    write_window = max(replaced_at - temp_at, 0.001)
    for whole in (before, after):  # both states are whole, valid tables
        restore(table, whole)
        read_csv_table(table, validate_generations)

    rng = random.Random(20261123)
    outcomes: list[dict[str, Any]] = []
    for attempt in range(KILLS):
        restore(table, before)
        leftovers = set(temp_files(tables))
        proc = start_archi3d(command)
        t0 = time.monotonic()
        in_write = False
        if attempt % 2 == 0:  # anywhere: imports, reading, validating, scanning, reconciling, writing
            time.sleep(rng.uniform(0, full_run * 0.8))  # a run can be faster than the reference one
        else:  # inside the write: temp file created, written, fsynced, replaced, folder fsynced
            while proc.poll() is None and not set(temp_files(tables)) - leftovers:
                time.sleep(0.0005)
            if attempt % 4 == 3:  # else at once: while the temp file is being written and fsynced
                time.sleep(rng.uniform(0, write_window * 1.5))  # around the replace
        if proc.poll() is None:
            in_write = bool(set(temp_files(tables)) - leftovers)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        killed_at = time.monotonic() - t0

        data = table.read_bytes()
        state = "before" if data == before else "after" if data == after else "other"
        outcomes.append(
            {"state": state, "killed": proc.returncode == -signal.SIGKILL, "in_write": in_write, "at": killed_at}
        )
        assert state != "other", f"attempt {attempt}: the table is neither the old nor the new one"
        read_csv_table(table, validate_generations)  # parses and validates
        for name in temp_files(tables):  # what is left is a dead writer's, for the next write to remove
            pid = int(name.rsplit("-tmp-", 1)[1].split("-", 1)[0]) if "-tmp-" in name else -1
            assert pid == -1 or not pid_alive(pid), name

    left_before_cleanup = len(temp_files(tables))
    restore(table, before)
    final = run_archi3d(command)
    assert final.returncode == 0, final.stderr
    assert table.read_bytes() == after
    assert temp_files(tables) == [], "the next write did not remove the temp files of killed runs"

    killed = [o for o in outcomes if o["killed"]]
    states = Counter(o["state"] for o in outcomes)
    figures = {
        "jobs": JOBS,
        "table_bytes": len(before),
        "build_s": round(built_in, 1),
        "full_run_s": round(full_run, 2),
        "write_window_s": round(write_window, 4),
        "attempts": len(outcomes),
        "killed_by_sigkill": len(killed),
        "kills_landing_during_write": sum(o["in_write"] for o in killed),
        "tables_before": states["before"],
        "tables_after": states["after"],
        "kills_after_the_replace": sum(o["state"] == "after" for o in killed),
        "temp_files_left_by_kills_then_cleaned": left_before_cleanup,
        "total_s": round(time.monotonic() - started_all, 1),
    }
    report(capsys, "crash", figures)
    assert len(outcomes) >= KILLS
    assert len(killed) >= KILLS * 0.6, figures  # the kills really interrupted running processes
    assert figures["kills_landing_during_write"] >= KILLS // 5, figures


# ----------------------------------------------------------------------------------- concurrency

_WRITER = r"""
import json, random, sys, time
from pathlib import Path

import pandas as pd

from archi3d.upsert import update_csv_atomic

table, plan_file, writer, seconds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
plan = json.loads(plan_file.read_text())
existing = [tuple(k) for k in plan["existing"]]
new_runs = plan["new_runs"]
rng = random.Random(writer)
last = {}
inserted = []
upserts = 0
print("ready", flush=True)
sys.stdin.readline()
deadline = time.monotonic() + seconds
counter = 0
while time.monotonic() < deadline:
    counter += 1
    value = f"w{writer}-{counter}"
    if counter % 3 == 0:  # a new row, of the consolidated run or of another one
        run_id = new_runs[counter % len(new_runs)]
        job_id = f"soak-w{writer}-n{counter:05d}"
        row = {"run_id": run_id, "job_id": job_id, "status": "enqueued", "product_id": f"{counter:05d}",
               "variant": "default", "algo": "trellis", "fscore": value}
        update_csv_atomic(table, pd.DataFrame([row], dtype="str"), ["run_id", "job_id"], lock_timeout=300)
        upserts += 1
        inserted.append([run_id, job_id])
        last[f"{run_id}|{job_id}"] = value
    # Updates carry only the key and fscore: update_csv_atomic sets every column the frame has.
    pool = existing + [tuple(k) for k in inserted]
    keys = rng.sample(pool, k=min(len(pool), rng.randint(1, 4)))
    batch = [{"run_id": r, "job_id": j, "fscore": value} for r, j in keys]
    update_csv_atomic(table, pd.DataFrame(batch, dtype="str"), ["run_id", "job_id"], lock_timeout=300)
    upserts += 1
    for row in batch:
        last[f"{row['run_id']}|{row['job_id']}"] = value
print(json.dumps({"last": last, "inserted": inserted, "upserts": upserts, "rows": counter}), flush=True)
"""


_LOCK_DELETER = r"""
import os, signal, sys, time

deleted = 0


def report(*_):
    print(deleted, flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
print("ready", flush=True)
while True:
    try:
        os.remove(sys.argv[1])
        deleted += 1
    except FileNotFoundError:
        pass
    time.sleep(0.003)
"""


@pytest.mark.parametrize("delete_lock", [False, True], ids=["lock-kept", "lock-file-deleted-every-3-ms"])
def test_consolidate_loop_with_concurrent_writers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], delete_lock: bool
) -> None:
    """With `delete_lock`, another process deletes tables/generations.lock every 3 ms throughout (a clean-up
    script, a sync client): mutual exclusion must not depend on that file surviving."""
    ws = tmp_path / "ws"
    jobs = min(JOBS, 1000)
    demo = build_demo_workspace(ws, jobs=jobs, seed=11, other_runs=2)
    table = ws / "tables" / "generations.csv"
    original = table.read_bytes()
    header, rows = parse_rows(original)
    assert "fscore" in header
    keys = [(r["run_id"], r["job_id"]) for r in rows]
    counts = Counter(keys)
    runs = sorted({run for run, _ in keys})
    other_runs = [r for r in runs if r != demo.run_id]
    assert demo.run_id in runs and len(other_runs) >= 2

    # Jobs that finish while the soak runs: a worker writes their .failed marker and error.txt (evidence only;
    # the table is left to consolidate), so that consolidate has rows to write on every pass, not just the first.
    pending = [e.job_id for e in demo.expectations if e.situation == "pending"]
    state = ws / "runs" / demo.run_id / "state"
    assert len(pending) >= 10

    # Each writer owns its keys: rows of the consolidated run and of the other runs (never a duplicated key:
    # consolidate merges those, which is not what is under test here).
    single = [k for k in keys if counts[k] == 1]
    rng = random.Random(5)
    rng.shuffle(single)
    per_run = {run: [k for k in single if k[0] == run] for run in runs}
    plans: list[dict[str, Any]] = []
    for w in range(WRITERS):
        mine = [k for run in runs for k in per_run[run][w * 25 : (w + 1) * 25]]
        plans.append({"existing": mine, "new_runs": [demo.run_id, other_runs[0], f"soak-run-{w}"]})
    owned = [set(map(tuple, p["existing"])) for p in plans]
    assert all(len(o) == 25 * len(runs) for o in owned)

    procs = []
    for w, plan in enumerate(plans):
        plan_file = tmp_path / f"plan-{w}.json"
        plan_file.write_text(json.dumps(plan))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, str(table), str(plan_file), str(w), str(SECONDS)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=clean_env(),
            )
        )

    loop: dict[str, Any] = {"iterations": 0, "written": 0, "failures": [], "durations": [], "finished": []}
    stop = threading.Event()

    def finish_jobs() -> None:
        for job_id in pending:
            if stop.wait(SECONDS / len(pending)):
                return
            (state / f"{job_id}.error.txt").write_text(f"Error: soak {job_id}\n\nTraceback:\n  ...\n", encoding="utf-8")
            (state / f"{job_id}.failed").write_text("timestamp: 2026-11-01T10:00:00+00:00\npid: 7\n", encoding="utf-8")
            loop["finished"].append(job_id)

    def consolidate_loop() -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            proc = run_archi3d(consolidate_args(ws, demo.run_id, "--json", "--lock-timeout", "300"), timeout=600)
            loop["durations"].append(time.monotonic() - t0)
            loop["iterations"] += 1
            if proc.returncode != 0:
                loop["failures"].append(proc.stderr[-2000:])
                continue
            loop["written"] += bool(json.loads(proc.stdout)["written"])

    deleter = None
    if delete_lock:
        deleter = subprocess.Popen(
            [sys.executable, "-c", _LOCK_DELETER, str(table.with_suffix(".lock"))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert deleter.stdout is not None and deleter.stdout.readline().strip() == "ready"
    results: list[dict[str, Any]] = []
    thread = threading.Thread(target=consolidate_loop, daemon=True)
    finisher = threading.Thread(target=finish_jobs, daemon=True)
    t_start = time.monotonic()
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        thread.start()
        finisher.start()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            out, err = proc.communicate(timeout=SECONDS + 600)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
    finally:
        stop.set()
        thread.join(timeout=900)
        finisher.join(timeout=60)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        deletions = 0
        if deleter is not None:
            deleter.terminate()
            deletions = int(deleter.communicate(timeout=30)[0].strip() or 0)
    soak_s = time.monotonic() - t_start
    assert not thread.is_alive()
    assert loop["failures"] == [], loop["failures"][:3]

    # Reference: what consolidate alone makes of the run from the final evidence and the original table.
    reference_ws = tmp_path / "reference"
    shutil.copytree(ws, reference_ws, symlinks=True)
    (reference_ws / "tables" / "generations.csv").write_bytes(original)
    ref = run_archi3d(consolidate_args(reference_ws, demo.run_id))
    assert ref.returncode == 0, ref.stderr
    _, reference_rows = parse_rows((reference_ws / "tables" / "generations.csv").read_bytes())
    reference = {(r["run_id"], r["job_id"]): r for r in reference_rows}
    shutil.rmtree(reference_ws)

    final = run_archi3d(consolidate_args(ws, demo.run_id, "--json"))  # after the last writes
    assert final.returncode == 0, final.stderr
    settle = run_archi3d(consolidate_args(ws, demo.run_id, "--json"))
    assert settle.returncode == 0, settle.stderr
    record = json.loads(settle.stdout)
    assert (record["upsert_updated"], record["upsert_inserted"]) == (0, 0)  # nothing left to do

    data = table.read_bytes()
    parsed = read_csv_table(table, validate_generations)
    assert parsed.bom
    header_after, rows_after = parse_rows(data)
    assert header_after[: len(header)] == header
    final_rows = {(r["run_id"], r["job_id"]): r for r in rows_after}
    assert len(final_rows) == len(rows_after), "a (run_id, job_id) appears more than once"

    # No row lost: every original key, every manifest job of the run, every row a writer inserted.
    inserted = {(run, job) for result in results for run, job in result["inserted"]}
    assert set(keys) <= set(final_rows)
    assert inserted <= set(final_rows)
    assert set(reference) <= set(final_rows)
    assert set(final_rows) == set(reference) | inserted

    # No update lost: each writer's last value of each key it wrote.
    lost = []
    for w, result in enumerate(results):
        for key_text, value in result["last"].items():
            run_id, job_id = key_text.split("|", 1)
            if final_rows[(run_id, job_id)]["fscore"] != value:
                lost.append((w, run_id, job_id, value, final_rows[(run_id, job_id)]["fscore"]))
    assert lost == [], lost[:10]

    # Nothing else changed: rows no writer touched are as consolidate alone made them (other runs: as they were),
    # and rows writers touched differ only in fscore.
    written_keys = {tuple(k.split("|", 1)) for result in results for k in result["last"]}
    for key, expected in reference.items():
        got = final_rows[key]
        if key in written_keys:
            got = {**got, "fscore": expected["fscore"]}
        assert got == expected, key
    for key in inserted:
        assert final_rows[key]["status"] == "enqueued"
    for job_id in loop["finished"]:  # the evidence that arrived during the soak was taken
        assert final_rows[(demo.run_id, job_id)]["status"] == "failed"
        assert final_rows[(demo.run_id, job_id)]["error_msg"].startswith(f"Error: soak {job_id}")

    figures = {
        "jobs": jobs,
        "runs": len(runs),
        "rows_before": len(rows),
        "rows_after": len(rows_after),
        "writers": WRITERS,
        "seconds": SECONDS,
        "lock_file_deletions": deletions,
        "soak_wall_s": round(soak_s, 1),
        "writer_upserts": [r["upserts"] for r in results],
        "writer_upserts_total": sum(r["upserts"] for r in results),
        "rows_inserted_by_writers": len(inserted),
        "keys_with_last_value_checked": sum(len(r["last"]) for r in results),
        "consolidate_iterations": loop["iterations"],
        "consolidate_iterations_that_wrote": loop["written"],
        "jobs_finished_during_the_soak": len(loop["finished"]),
        "consolidate_s_min_max": [round(min(loop["durations"]), 2), round(max(loop["durations"]), 2)],
    }
    report(capsys, "concurrency", figures)
    assert loop["iterations"] >= 3 and loop["written"] >= 2, figures
    assert all(r["upserts"] >= 5 for r in results), figures
    assert not delete_lock or deletions >= 100, figures
