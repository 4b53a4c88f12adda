"""Reading several databases at once while dlt consumes pages from one generator.

Each database is read by a worker thread that puts its pages on a bounded queue, and the
resource's generator yields them in arrival order. The queue bound keeps memory flat: a
worker waits while the generator is behind. Request pacing stays global because every worker
shares the one client and its pacer.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

Item = TypeVar("Item")
Page = TypeVar("Page")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def fan_in(
    items: Iterable[Item],
    read: Callable[[Item], Iterator[Page]],
    workers: int,
    max_pending_pages: int = 32,
    may_start: Callable[[], bool] = lambda: True,
) -> Iterator[Page]:
    """Yield the pages of `read(item)` for items in order, reading up to `workers` at once.

    Before each item after the first, `may_start()` is asked; once it returns False no
    further item starts, and the items already started are read to the end. With one
    worker, items are read in order in the calling thread. An exception raised by a reader
    stops the other readers and is raised here. Closing the generator early stops the
    readers too.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        for index, item in enumerate(items):
            if index and not may_start():
                return
            yield from read(item)
        return

    pages: queue.Queue = queue.Queue(maxsize=max_pending_pages)
    cancelled = threading.Event()

    def put(value: object) -> None:
        while not cancelled.is_set():
            try:
                pages.put(value, timeout=0.1)
                return
            except queue.Full:
                continue

    def worker(item: Item) -> None:
        try:
            for page in read(item):
                if cancelled.is_set():
                    return
                put(page)
        except BaseException as error:  # handed to the consumer, which raises it
            put(_Failure(error))
        finally:
            put(_DONE)

    executor = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="qovery")
    waiting = iter(items)
    running = 0

    def start_next() -> bool:
        nonlocal running
        item = next(waiting, _DONE)
        if item is _DONE:
            return False
        executor.submit(worker, item)
        running += 1
        return True

    try:
        # The first item always starts, so every call makes progress.
        started = start_next()
        while started and running < workers and may_start():
            started = start_next()
        while running:
            value = pages.get()
            if value is _DONE:
                running -= 1
                if started and may_start():
                    started = start_next()
                else:
                    started = False
            elif isinstance(value, _Failure):
                raise value.error
            else:
                yield value
    finally:
        cancelled.set()
        executor.shutdown(wait=True, cancel_futures=True)
