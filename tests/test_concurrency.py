"""Reading databases concurrently: the fan-in helper, and exact request counts at scale."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from conftest import NOW, TOKEN, assert_tables_match, backup_requests, full_history_pages, run
from qovery_backups.concurrency import fan_in
from qovery_backups.simulator import SimulatorServer, World


def pages_of(item):
    for number in range(3):
        time.sleep(0.001)
        yield (item, number)


def test_fan_in_yields_every_page():
    pages = list(fan_in(range(10), pages_of, workers=4))
    assert sorted(pages) == [(item, number) for item in range(10) for number in range(3)]


def test_fan_in_keeps_each_item_in_order():
    pages = list(fan_in(range(10), pages_of, workers=4))
    for item in range(10):
        assert [number for owner, number in pages if owner == item] == [0, 1, 2]


def test_single_worker_reads_in_order():
    assert list(fan_in(range(3), pages_of, workers=1)) == [
        (item, number) for item in range(3) for number in range(3)
    ]


def test_fan_in_raises_reader_error():
    def failing(item):
        yield (item, 0)
        if item == 2:
            raise RuntimeError("reader 2 failed")

    with pytest.raises(RuntimeError, match="reader 2 failed"):
        list(fan_in(range(5), failing, workers=3))


def test_closing_early_stops_workers():
    started = threading.Event()

    def endless(item):
        started.set()
        while True:
            yield item

    pages = fan_in(range(3), endless, workers=3, max_pending_pages=2)
    assert next(pages) in range(3)
    pages.close()
    assert started.is_set()
    assert [thread for thread in threading.enumerate() if thread.name.startswith("qovery")] == []


def test_concurrent_backfill_costs_exact_requests(pipeline):
    world = World.generate(
        seed=3, now=NOW, databases=20, backups_per_database=[41, 40] * 10,
        interval=timedelta(hours=6),
    )
    ids = world.backup_database_ids()
    with SimulatorServer(world, tokens=(TOKEN,), latency=0.005) as server:
        run(pipeline, server, database_ids=ids, concurrency=4)
        # 41 backups: two full pages and a short one. 40: two full pages and an empty one.
        assert backup_requests(server) == {
            database_id: full_history_pages(count)
            for database_id, count in zip(ids, [41, 40] * 10)
        }
        assert_tables_match(pipeline, world, ids)
        server.reset_log()

        run(pipeline, server, database_ids=ids, concurrency=4)

        assert backup_requests(server) == dict.fromkeys(ids, 1)
    assert_tables_match(pipeline, world, ids)
