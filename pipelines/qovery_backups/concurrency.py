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
) -> Iterator[Page]:
    """Yield the pages of `read(item)` for every item, reading up to `workers` items at once.

    With one worker, items are read in order in the calling thread. An exception raised by
    a reader stops the other readers and is raised here. Closing the generator early stops
    the readers too.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        for item in items:
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
    try:
        for item in items:
            executor.submit(worker, item)
        remaining = len(items)
        while remaining:
            value = pages.get()
            if value is _DONE:
                remaining -= 1
            elif isinstance(value, _Failure):
                raise value.error
            else:
                yield value
    finally:
        cancelled.set()
        executor.shutdown(wait=True, cancel_futures=True)
