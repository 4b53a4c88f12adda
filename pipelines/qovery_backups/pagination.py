"""The `startId` paginator of Qovery's backup list.

The endpoint returns `{page, page_size, results}` with the newest backups first, and the next
page is requested with `startId=<id of the last backup seen>`. It has no last-page flag, so the
paginator ends on the first of these:

- an empty page (or a body without `results`);
- a page shorter than the response's `page_size`;
- a page that holds no id seen before;
- a stop requested by the caller (the incremental lookback window was reached);
- the page cap, a guard against a server that never ends.

A server that answers a `startId` with the very page it served before is ignoring the
parameter, and paging would never end: that raises `PaginationError`.
"""

from __future__ import annotations

from typing import Any, Mapping

from qovery_backups import settings
from qovery_backups.client import QoveryResponseError

STOP_EMPTY_PAGE = "empty page"
STOP_SHORT_PAGE = "short page"
STOP_NO_NEW_IDS = "page with no new ids"
STOP_PAGE_CAP = "page cap reached"


class PaginationError(QoveryResponseError):
    """The server answered in a way that would make paging loop forever."""


class StartIdPaginator:
    """Walks one database's backup pages and decides when to stop.

    Usage: while `has_next`, request the page with `next_params()`, then pass the decoded body
    to `update()`, which returns the backups not seen before on earlier pages.
    """

    def __init__(self, path: str = "", max_pages: int = settings.MAX_PAGES_PER_DATABASE) -> None:
        self.path = path
        self.max_pages = max_pages
        self.pages = 0
        self.stop_reason: str | None = None
        self._start_id: str | None = None
        self._seen_ids: set[str] = set()
        self._previous_ids: list[str] | None = None

    @property
    def has_next(self) -> bool:
        return self.stop_reason is None

    def next_params(self) -> dict[str, str]:
        """Return the query parameters of the next page: none for the first one."""
        return {} if self._start_id is None else {"startId": self._start_id}

    def stop(self, reason: str) -> None:
        """End paging early, for a reason of the caller's."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def update(self, body: Any) -> list[dict[str, Any]]:
        """Read one page's body, move the cursor and return its backups not seen before."""
        results = _results_of(body, self.path)
        self.pages += 1
        ids = [_id_of(item, self.path) for item in results]

        if not results:
            self.stop(STOP_EMPTY_PAGE)
            return []
        if self._previous_ids is not None and ids == self._previous_ids:
            raise PaginationError(
                f"GET {self.path} returned the same page again for startId={self._start_id}: "
                "the server appears to ignore startId, and paging would never end.",
                path=self.path,
                hint="Retry later; if it persists, report it to Qovery support.",
            )

        new_items = []
        for item, item_id in zip(results, ids):
            if item_id not in self._seen_ids:
                self._seen_ids.add(item_id)
                new_items.append(item)
        self._previous_ids = ids
        self._start_id = ids[-1]

        if not new_items:
            self.stop(STOP_NO_NEW_IDS)
        elif len(results) < page_size_of(body):
            self.stop(STOP_SHORT_PAGE)
        elif self.pages >= self.max_pages:
            self.stop(STOP_PAGE_CAP)
        return new_items


def page_size_of(body: Mapping[str, Any]) -> int:
    """Return the page size a response states, or the API's default of 20.

    The spec types `page_size` as a number, so `20.0` is accepted as 20.
    """
    value = body.get("page_size")
    try:
        size = int(float(value))
    except (TypeError, ValueError):
        return settings.DEFAULT_PAGE_SIZE
    return size if size > 0 else settings.DEFAULT_PAGE_SIZE


def _results_of(body: Any, path: str) -> list[Any]:
    if not isinstance(body, Mapping):
        raise QoveryResponseError(
            f"GET {path} returned a {type(body).__name__} where a JSON object was expected.",
            path=path,
            body_excerpt=repr(body)[:200],
        )
    results = body.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise QoveryResponseError(
            f"GET {path} returned `results` as a {type(results).__name__}, not a list.",
            path=path,
            body_excerpt=repr(results)[:200],
        )
    return results


def _id_of(item: Any, path: str) -> str:
    if isinstance(item, Mapping) and isinstance(item.get("id"), str) and item["id"]:
        return item["id"]
    raise QoveryResponseError(
        f"GET {path} returned a backup without a string `id`.",
        path=path,
        body_excerpt=repr(item)[:200],
    )
