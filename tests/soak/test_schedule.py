"""The soak's fault schedule: seeded, replayable, 15 to 30 faults in 180 s, a handful in 30 s."""

import dataclasses

import pytest

from soak.faults import COUNTER_FAULTS, COUNTERS, DB_RESTART, schedule

SEEDS = range(40)


def test_the_same_seed_replays_the_same_schedule():
    for seed in SEEDS:
        first = schedule(seed, 180, database="sqlite")
        again = schedule(seed, 180, database="sqlite")
        assert [dataclasses.astuple(f) for f in first] == [dataclasses.astuple(f) for f in again]


def test_different_seeds_give_different_schedules():
    schedules = {
        tuple((f.at, f.kind) for f in schedule(seed, 180, database="sqlite")) for seed in SEEDS
    }
    assert len(schedules) == len(SEEDS)


@pytest.mark.parametrize(("seconds", "low", "high"), [(180, 15, 30), (30, 3, 5), (3600, 30, 30)])
def test_fault_count_scales_with_the_length(seconds, low, high):
    counts = {len(schedule(seed, seconds, database="sqlite")) for seed in SEEDS}
    assert low <= min(counts) and max(counts) <= high


def test_every_fault_ends_within_the_load():
    for seed in SEEDS:
        for fault in schedule(seed, 30, database="postgresql"):
            assert fault.at > 0 and fault.at + fault.seconds < 30


def test_postgresql_gets_one_database_restart_sqlite_none():
    for seed in SEEDS:
        assert [f.kind for f in schedule(seed, 60, database="postgresql")].count(DB_RESTART) == 1
        assert DB_RESTART not in [f.kind for f in schedule(seed, 60, database="sqlite")]


def test_the_schedule_is_sorted_by_time():
    for seed in SEEDS:
        times = [fault.at for fault in schedule(seed, 180, database="postgresql")]
        assert times == sorted(times)


def test_counter_faults_hit_either_destination():
    faults = [
        fault
        for seed in SEEDS
        for fault in schedule(seed, 180, database="sqlite")
        if fault.kind in COUNTER_FAULTS
    ]
    targets = {fault.target for fault in faults}
    assert targets == set(range(len(COUNTERS)))
    for fault in faults:
        assert COUNTERS[fault.target] in fault.describe()


def test_one_destination_is_faulted_while_the_other_is_not():
    """Some counter-side fault runs while no fault hits the other destination."""
    alone = 0
    for seed in SEEDS:
        faults = [f for f in schedule(seed, 180, database="sqlite") if f.kind in COUNTER_FAULTS]
        for fault in faults:
            others = [f for f in faults if f.target != fault.target]
            overlaps = any(
                f.at < fault.at + fault.seconds and fault.at < f.at + f.seconds for f in others
            )
            alone += not overlaps
    assert alone > 0
