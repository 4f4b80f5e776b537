"""Integration: several real processes upsert into one generations.csv and append to one log at once."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from archi3d.csvtable import read_csv_table
from archi3d.paths import PathResolver
from archi3d.schema import validate_generations

WORKERS = 4
PER_WORKER = 50

_WORKER = """
import sys
from pathlib import Path

import pandas as pd

from archi3d.atomic import append_log_record
from archi3d.upsert import update_csv_atomic

table, log, worker, count = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
print("ready", flush=True)
sys.stdin.readline()
for i in range(count):
    job = f"w{worker}-{i:03d}"
    row = {
        "run_id": "run-1",
        "job_id": job,
        "status": "enqueued",
        "product_id": f"{i:05d}",
        "notes": f'worker {worker}, "row" {i}\\nsecond line',
    }
    result = update_csv_atomic(table, pd.DataFrame([row], dtype="str"), ["run_id", "job_id"], lock_timeout=120)
    if result != (1, 0):
        sys.exit(f"{job}: upsert returned {result}")
    append_log_record(log, {"event": "upserted", "worker": worker, "i": i, "job_id": job, "text": "a\\nb"})
print("done", flush=True)
"""


def test_parallel_upserts_and_log_appends_lose_nothing(tmp_path: Path) -> None:
    resolver = PathResolver(tmp_path)
    resolver.ensure_mutable_tree()
    table, log = resolver.generations_csv_path(), resolver.metrics_log_path()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(table), str(log), str(w), str(PER_WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    try:
        for proc in procs:  # every worker has imported everything: start them together
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=240) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert out.strip() == "done"

    parsed = read_csv_table(table, validate_generations)
    assert parsed.bom
    jobs = parsed.column("job_id")
    expected = {f"w{w}-{i:03d}" for w in range(WORKERS) for i in range(PER_WORKER)}
    assert len(parsed) == WORKERS * PER_WORKER
    assert len(set(jobs)) == len(jobs)
    assert set(jobs) == expected
    for w in range(WORKERS):  # each worker's rows stand in the order it wrote them
        mine = [j for j in jobs if j.startswith(f"w{w}-")]
        assert mine == sorted(mine)
    for cells in parsed.rows(list(range(len(parsed)))):
        worker, number = cells["job_id"][1:].split("-")
        assert cells["product_id"] == f"{int(number):05d}"
        assert cells["notes"] == f'worker {worker}, "row" {int(number)}\nsecond line'
        assert cells["status"] == "enqueued"
    assert [p.name for p in table.parent.iterdir() if "archi3d-tmp" in p.name] == []

    lines = log.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert len(lines) == WORKERS * PER_WORKER
    seen: list[tuple[int, int]] = []
    for line in lines:
        stamp, _, body = line.partition(" ")
        assert dt.datetime.fromisoformat(stamp).utcoffset() == dt.timedelta(0)
        record = json.loads(body)
        assert record["event"] == "upserted" and record["text"] == "a\nb"
        seen.append((int(record["worker"]), int(record["i"])))
    assert sorted(seen) == [(w, i) for w in range(WORKERS) for i in range(PER_WORKER)]
    for w in range(WORKERS):
        assert [i for worker, i in seen if worker == w] == list(range(PER_WORKER))
