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
def test_attempt_storage_measures_the_log_and_clear_events_empties_it():
    from django.utils import timezone

    from bench.fixtures import add_pending_events, attempt_storage, clear_events
    from broadcast.models import Attempt, Delivery

    assert attempt_storage()["attempt_bytes_per_million"] is None  # no attempt: no figure
    add_pending_events(50)
    Attempt.objects.bulk_create(
        Attempt(delivery=d, destination_id=d.destination_id, number=1, started_at=timezone.now(),
                duration_ms=3, status_code=200, succeeded=True, response='{"status":"counted"}')
        for d in Delivery.objects.all()
    )  # fmt: skip
    found = attempt_storage()
    assert found["attempts"] == 50
    assert found["attempt_bytes"] >= 50 * 20  # at least the responses' bytes
    assert found["attempt_bytes_per_million"] == 1e6 * found["attempt_bytes"] / 50
    clear_events()  # the attempts first: they refer to the deliveries
    assert not Attempt.objects.exists()
    assert not Delivery.objects.exists()


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


def test_targets_11_to_13_compare_deliveries_the_healthy_p99_and_the_create_per_repetition():
    run = run_of(
        drain_dest_1=[{"deliveries_per_s": 5000, "events_per_s": 5000}],
        drain_dest_2=[{"deliveries_per_s": 4500, "events_per_s": 2250}],
        isolation_alone=[{"p99": 4.0}, {"p99": 5.0}],
        isolation_down=[{"p99": 5.0}, {"p99": 10.0}],
        api_create_dest_1=[{"rps": 250}],
        api_create_dest_5=[{"rps": 240}],
    )
    found = {(t.number, t.what): t for t in targets({"sqlite": run}) if t.number >= 11}
    assert found[(11, "drain, deliveries/s: two destinations / one")].values == [0.9]
    down = found[(12, "healthy destination's p99 at 20/s, second down / alone")]
    assert down.values == [1.25, 2.0]
    assert not down.higher
    assert found[(12, "healthy destination's p99 at 20/s, second down")].values == [5.0, 10.0]
    assert found[(12, "healthy destination's p99 at 20/s, second slow (10 s)")].values == []
    assert found[(13, "API create: five destinations / one (no dispatcher)")].values == [0.96]


def test_the_destinations_tables_show_each_repetition_and_nothing_without_results():
    from bench.report import destinations

    drain = {"events": 50, "deliveries": 100, "seconds": 1.0, "deliveries_per_s": 100.0,
             "events_per_s": 50.0, "counted_per_destination": [50, 50], "duplicates": 0,
             "left_pending": 0, "dispatcher_cpu_ms_per_event": 0.1,
             "backend_cpu_ms_per_event": 0.0}  # fmt: skip
    steady = {"count": 200, "p50": 2.0, "p90": 3.0, "p99": 6.0, "max": 7.0}
    steady |= {"beside_attempts": 9, "beside_delivered": 0}
    run = run_of(drain_dest_2=[drain], isolation_overloaded=[steady])
    md = destinations({"postgresql": run})
    assert (
        "| PostgreSQL | 2 | 1 | 50 | 100 | 1.0 | 100 | 50 | 50 / 50 | 0 | 0 | 0.100 | 0.000 |" in md
    )
    assert "| PostgreSQL | 503 + Retry-After | 1 | 200 | 2.0 | 3.0 | 6.0 | 7.0 | 9 | 0 |" in md
    assert destinations({"sqlite": run_of()}) == []


def test_merge_replaces_those_scenarios_and_says_when_they_were_measured(tmp_path, monkeypatch):
    from bench import config, report, run

    monkeypatch.setattr(config, "RESULTS", tmp_path)
    monkeypatch.setattr(config, "TMP", tmp_path / "tmp")
    config.TMP.mkdir()
    full = {"scenarios": {"drain_1": [{"n": 1}], "isolation_alone": [{"p99": 9.0}]},
            "phase_seconds": {"setup": 5, "drains": 30}, "seconds": 100}  # fmt: skip
    (tmp_path / "sqlite.json").write_text(json.dumps(full))
    partial = {"scenarios": {"isolation_alone": [{"p99": 4.0}]},
               "phase_seconds": {"setup": 4, "isolation": 60}}  # fmt: skip
    (config.TMP / "sqlite-partial.json").write_text(json.dumps(partial))
    run.merge("sqlite")
    merged = json.loads((tmp_path / "sqlite.json").read_text())
    assert merged["scenarios"] == {"drain_1": [{"n": 1}], "isolation_alone": [{"p99": 4.0}]}
    assert merged["phase_seconds"] == {"setup": 5, "drains": 30, "isolation": 60}
    assert [m["scenarios"] for m in merged["merged"]] == [["isolation_alone"]]
    partial["scenarios"] = {"drain_dest_1": [{"n": 2}], "isolation_alone": [{"p99": 5.0}]}
    (config.TMP / "sqlite-partial.json").write_text(json.dumps(partial))
    run.merge("sqlite")  # again: the later merge of the same scenarios replaces the earlier
    merged = json.loads((tmp_path / "sqlite.json").read_text())
    assert [m["scenarios"] for m in merged["merged"]] == [["drain_dest_1", "isolation_alone"]]
    line = report.merged({"sqlite": merged})[0]
    assert "SQLite (WAL): `drain_dest_1`, `isolation_alone` measured on" in line


def drains(rep: int, *seconds: float, left: int = 0) -> list[dict]:
    """A repetition's drains of 1,000 events as attempt_log records them, `left` undelivered."""
    return [{"rep": rep, "events": 1000, "events_per_s": (1000 - left) / s, "seconds": s}
            for s in seconds]  # fmt: skip


def test_target_14_pools_each_sides_drains_per_repetition():
    run = run_of(  # per repetition, each side's delivered events over its drains' seconds
        drain_log_on=drains(0, 0.25, 0.15) + drains(1, 0.5, 0.5) + drains(2, 0.2, left=100),
        drain_log_off=drains(0, 0.1, 0.2) + drains(1, 0.3, 0.45) + drains(2, 0.2),
    )
    (found,) = [t for t in targets({"postgresql": run}) if t.number == 14]
    # Not the drains' own ratios' median; repetition 2's drain left a tenth undelivered.
    assert found.values == pytest.approx([0.75, 0.75, 0.9])
    assert found.higher and found.threshold == 0.9


def test_target_14_pairs_the_repetitions_both_sides_have():
    run = run_of(drain_log_on=drains(0, 0.2) + drains(1, 0.5), drain_log_off=drains(1, 0.4))
    (found,) = [t for t in targets({"postgresql": run}) if t.number == 14]
    assert found.values == pytest.approx([0.8])


def test_target_14_takes_a_result_without_its_repetition_as_one_repetition():
    def old(events_per_s: float) -> dict:  # recorded before a repetition had several drains
        return {"events": 1000, "events_per_s": events_per_s, "seconds": 1.0}

    run = run_of(drain_log_on=[old(900), old(600)], drain_log_off=[old(1000), old(800)])
    (found,) = [t for t in targets({"sqlite": run}) if t.number == 14]
    assert found.values == pytest.approx([0.9, 0.75])


def test_the_attempt_log_table_shows_each_drain_and_the_storage_per_million():
    from bench.report import attempt_log

    drain = {"seconds": 10.0, "events_per_s": 10000.0, "dispatcher_cpu_ms_per_event": 0.1,
             "backend_cpu_ms_per_event": 0.05}  # fmt: skip
    on = drain | {"rep": 0, "order": 1, "attempts": 100000, "attempt_bytes": 10 * 2**20,
                  "attempt_bytes_per_million": 100 * 2**20}  # fmt: skip
    off = drain | {"rep": 0, "order": 2, "attempts": 0, "attempt_bytes": 8192,
                   "attempt_bytes_per_million": None}  # fmt: skip
    md = attempt_log({"sqlite": run_of(drain_log_on=[on], drain_log_off=[off])})
    assert (
        "| SQLite (WAL) | on (every attempt) | 1 | 1 | 10.0 | 10,000 | 0.100 | 0.050 | 100,000 "
        "| 10.0 | 105 |" in md
    )
    assert (
        "| SQLite (WAL) | successes off | 1 | 2 | 10.0 | 10,000 | 0.100 | 0.050 | 0 | 0.0 |  |"
        in md
    )
    assert "| SQLite (WAL) | **100 MiB** (100 to 100) | **105** (105 to 105) |" in md
    assert attempt_log({"sqlite": run_of()}) == []
