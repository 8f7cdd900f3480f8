"""The bench's own measuring code: /proc CPU times, the counter server's log, the targets."""

import datetime
import json
import os
import sys
import time

import pytest

from bench import counterlog, procs
from bench.cpu import cpu_seconds, total_cpu_seconds
from bench.report import beside_outages
from bench.targets import Target, ratios, targets

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def test_cpu_seconds_of_an_exited_child_are_its_final_times(tmp_path):
    proc = procs.start([sys.executable, "-c", BURN.format(s=0.3)], env=dict(os.environ),
                       log=tmp_path / "burn.log")  # fmt: skip
    deadline = time.monotonic() + 30
    while not procs.has_exited(proc):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    seconds = cpu_seconds(proc.pid)  # the zombie, not reaped yet
    procs.reap(proc)
    procs.stop(proc)
    assert seconds >= 0.3
    assert cpu_seconds(proc.pid) is None  # reaped: gone


def test_total_cpu_seconds_counts_a_process_that_is_not_there_as_zero():
    absent = 2**22 + 1  # above Linux's largest pid_max: no such process
    assert cpu_seconds(absent) is None
    own = cpu_seconds(os.getpid())
    assert own > 0
    assert own <= total_cpu_seconds([os.getpid(), absent]) <= own + 0.5


LOG = (
    "2026-11-28T05:31:34.123Z user 1 create (key 00000000-0000-4000-8000-000000000001)\n"
    "2026-11-28T05:31:34.200Z duplicate 00000000-0000-4000-8000-000000000001: user 1 create "
    "(not counted)\n"
    "2026-11-28T05:31:34.300Z user 2 delete (key 00000000-0000-4000-8000-000000000002)\n"
    "Listening on http://127.0.0.1:8888/\n"
)


def test_counter_log_first_arrival_per_key_and_tally(tmp_path):
    path = tmp_path / "counter.log"
    path.write_text(LOG)
    first = "00000000-0000-4000-8000-000000000001"
    found = counterlog.arrivals(path, {first})
    assert found == {first: datetime.datetime(2026, 11, 28, 5, 31, 34, 123000, datetime.UTC)}
    assert counterlog.tally(path) == {"counted": 2, "duplicates": 1}
    later = len(LOG.splitlines(keepends=True)[0])  # from the second line on
    assert counterlog.arrivals(path, {first}, later)[first].microsecond == 200000


def run_of(**scenarios) -> dict:
    return {"scenarios": scenarios}


def test_ratios_are_taken_per_repetition():
    run = run_of(a=[{"rps": 90}, {"rps": 40}], b=[{"rps": 100}, {"rps": 80}])
    assert ratios(run, "a", "b") == [0.9, 0.5]


def test_a_target_is_met_by_its_median_and_says_when_a_rep_missed():
    target = Target(4, "sqlite", "x", [0.96, 0.97, 0.90], 0.95)
    assert target.met
    assert target.cells()[-1] == "**met** (not every rep)"
    assert not Target(4, "sqlite", "x", [0.90, 0.96, 0.91], 0.95).met
    assert Target(5, "sqlite", "x", [], 50, higher=False).cells()[-1] == "not measured"


def test_target_8_adds_the_backends_cpu_and_6_divides_by_the_capacity():
    run = run_of(
        drain_1=[{"events_per_s": 7000, "dispatcher_cpu_ms_per_event": 0.06,
                  "backend_cpu_ms_per_event": 0.05, "peak_rss_mb": [90]}],
        counter_capacity=[{"rps": 10000}],
    )  # fmt: skip
    found = {(t.number, t.what): t.values for t in targets({"postgresql": run})}
    assert found[(8, "dispatcher CPU per event, drain")] == [pytest.approx(0.11)]
    assert found[(6, "drain, one dispatcher / counter capacity (wrk, same connections)")] == [
        pytest.approx(0.7)
    ]


def test_the_outage_table_shows_each_share_of_the_machine_and_skips_older_results():
    shares = {"warm_up_dispatcher_machine_share": 0.0674, "warm_up_backend_machine_share": 0.0,
              "dispatcher_machine_share": 0.005, "backend_machine_share": 0.0012}  # fmt: skip
    run = run_of(api_create_down=[shares], api_create_slow=[{"rps": 200}])
    lines = beside_outages({"postgresql": run})
    rows = [line for line in lines if line.startswith("| PostgreSQL")]
    assert rows == ["| PostgreSQL | down | 1 | 6.7% | 0.0% | 0.5% | 0.1% |"]
    assert beside_outages({"sqlite": run_of(api_create_down=[{"rps": 200}])}) == []


@pytest.mark.django_db
def test_clear_events_empties_the_outbox_and_on_postgresql_its_indexes():
    from django.db import connection

    from bench.fixtures import add_pending_events, clear_events
    from broadcast.models import Delivery, Event

    add_pending_events(300)
    assert Delivery.objects.pending().count() == 300  # one each, to the built-in destination
    delivered = Delivery.objects.filter(id__in=Delivery.objects.values("id")[:100])
    delivered.update(status="delivered")
    clear_events()
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()
    if connection.vendor == "postgresql":  # no dead entries left for a claim to walk
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_size('broadcast_delivery_due_idx')")
            assert cursor.fetchone()[0] <= 8192  # the empty index's metapage at most


@pytest.mark.django_db
def test_add_defects_numbers_them_on_from_start(user):
    from bench.fixtures import add_defects
    from defect.models import Defect

    add_defects(3, user_id=user.id, start=5)  # small numbers: PostgreSQL binds them as smallint
    comments = sorted(Defect.objects.filter(user=user).values_list("comment", flat=True))
    assert [c.split(":")[0] for c in comments] == [f"Bench defect {i}" for i in (5, 6, 7)]


def test_run_seconds_reads_a_processs_cpu_finer_than_ticks():
    from bench.cpu import run_seconds

    start, burnt = run_seconds(os.getpid()), time.process_time()
    while time.process_time() - burnt < 0.005:  # half a tick of 10 ms
        pass
    assert 0.005 <= run_seconds(os.getpid()) - start < 0.5
    assert run_seconds(2**22 + 1) is None


def test_side_by_side_compares_each_target_both_runs_measured(tmp_path, monkeypatch):
    from bench import report

    def run(create: float, drain: float) -> dict:
        return {"scenarios": {
            "api_create_on": [{"rps": create}] * 3, "floor_create_on": [{"rps": 100.0}] * 3,
            "drain_1": [{"events_per_s": drain, "peak_rss_mb": [60.0]}] * 3,
            "counter_capacity": [{"rps": 1000.0}] * 3,
        }}  # fmt: skip

    (tmp_path / "sqlite.json").write_text(json.dumps(run(80.0, 700.0) | {"commit": "abc1234"}))
    monkeypatch.setattr(report, "SIDE_BY_SIDE", tmp_path)
    md = report.side_by_side({"sqlite": run(76.0, 560.0)})
    assert md[0] == "## Side by side with `abc1234`"
    create = "API create (on) / floor create (on)"
    drain = "drain, one dispatcher / counter capacity (wrk, same connections)"
    assert f"| 1 | SQLite (WAL) | {create} | 0.80 | 0.76 | 0.95 | **within 10%** |" in md
    worse = "**worse by more than 10%**"
    assert f"| 6 | SQLite (WAL) | {drain} | 0.70 | 0.56 | 0.80 | {worse} |" in md
    assert report.side_by_side({"postgresql": run(1.0, 1.0)}) == []  # no other run: nothing


def test_side_by_side_takes_this_commits_alternated_repetitions_when_there_are(
    tmp_path, monkeypatch
):
    from bench import report

    def run(create: float) -> dict:
        return {"scenarios": {
            "api_create_on": [{"rps": create}] * 3, "floor_create_on": [{"rps": 100.0}] * 3,
        }}  # fmt: skip

    (tmp_path / "sqlite.json").write_text(json.dumps(run(80.0) | {"commit": "abc1234"}))
    (tmp_path / "sqlite-now.json").write_text(json.dumps(run(84.0) | {"commit": "def5678"}))
    monkeypatch.setattr(report, "SIDE_BY_SIDE", tmp_path)
    md = report.side_by_side({"sqlite": run(60.0)})  # the full run's: not the one compared
    create = "API create (on) / floor create (on)"
    assert f"| 1 | SQLite (WAL) | {create} | 0.80 | 0.84 | 1.05 | **within 10%** |" in md
    assert any("alternated repetition by repetition with def5678's" in line for line in md)


def test_alternated_runs_are_gathered_repetition_after_repetition():
    from bench.sidebyside import gather

    first = {"database": "sqlite", "scenarios": {"drain_1": [{"n": 1}], "profile": {"x": 1}}}
    second = {"database": "sqlite", "scenarios": {"drain_1": [{"n": 2}], "idle": [{"n": 3}]}}
    assert gather([first, second]) == {
        "database": "sqlite",
        "scenarios": {"drain_1": [{"n": 1}, {"n": 2}], "idle": [{"n": 3}]},
    }


def test_append_keeps_the_alternated_repetitions_of_the_same_other_commit(tmp_path, monkeypatch):
    from bench import sidebyside

    monkeypatch.setattr(sidebyside, "SIDE_BY_SIDE", tmp_path)
    held = {"scenarios": {"drain_1": [{"n": 1}]}, "commit": "abc1234", "alternated": True}
    (tmp_path / "sqlite.json").write_text(json.dumps(held))
    (tmp_path / "sqlite-now.json").write_text(json.dumps(held | {"commit": "def5678"}))
    (tmp_path / "postgresql.json").write_text(json.dumps(held | {"alternated": False}))
    assert sidebyside.earlier("sqlite", "abc1234") == [held]
    assert sidebyside.earlier("sqlite", "0000000") == []  # another commit's: not added to
    assert sidebyside.earlier("sqlite-now") == [held | {"commit": "def5678"}]
    assert sidebyside.earlier("postgresql", "abc1234") == []  # not alternated
    assert sidebyside.earlier("missing") == []
