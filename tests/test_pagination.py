"""The startId paginator's stop rules, on hand-built response bodies."""

import pytest

from qovery_backups.client import QoveryResponseError
from qovery_backups.pagination import (
    STOP_EMPTY_PAGE,
    STOP_NO_NEW_IDS,
    STOP_PAGE_CAP,
    STOP_SHORT_PAGE,
    PaginationError,
    StartIdPaginator,
    page_size_of,
)


def page(ids, page_size=20):
    return {"page": 1, "page_size": page_size, "results": [{"id": i} for i in ids]}


def ids_of(items):
    return [item["id"] for item in items]


def test_first_page_has_no_start_id():
    assert StartIdPaginator().next_params() == {}


def test_full_page_moves_cursor_to_last_id():
    paginator = StartIdPaginator()
    items = paginator.update(page([f"b{i}" for i in range(20)]))
    assert len(items) == 20
    assert paginator.has_next
    assert paginator.next_params() == {"startId": "b19"}


def test_short_page_stops_paging():
    paginator = StartIdPaginator()
    assert ids_of(paginator.update(page(["a", "b", "c"]))) == ["a", "b", "c"]
    assert not paginator.has_next
    assert paginator.stop_reason == STOP_SHORT_PAGE


def test_empty_page_stops_paging():
    paginator = StartIdPaginator()
    paginator.update(page([f"b{i}" for i in range(20)]))
    assert paginator.update(page([])) == []
    assert paginator.stop_reason == STOP_EMPTY_PAGE
    assert paginator.pages == 2


def test_missing_results_is_empty_page():
    paginator = StartIdPaginator()
    assert paginator.update({"page": 1, "page_size": 20}) == []
    assert paginator.stop_reason == STOP_EMPTY_PAGE


def test_float_page_size_is_accepted():
    paginator = StartIdPaginator()
    paginator.update(page([f"b{i}" for i in range(20)], page_size=20.0))
    assert paginator.has_next
    paginator.update(page([f"c{i}" for i in range(19)], page_size=20.0))
    assert paginator.stop_reason == STOP_SHORT_PAGE


@pytest.mark.parametrize(
    ("value", "expected"),
    [(20, 20), (20.0, 20), ("20", 20), (None, 20), ("x", 20), (0, 20), (-5, 20), (50, 50)],
)
def test_page_size_of(value, expected):
    assert page_size_of({"page_size": value}) == expected


def test_page_size_missing_defaults_to_20():
    assert page_size_of({}) == 20


def test_smaller_stated_page_size_is_respected():
    paginator = StartIdPaginator()
    paginator.update(page(["a", "b"], page_size=2))
    assert paginator.has_next
    assert paginator.next_params() == {"startId": "b"}


def test_page_with_no_new_ids_stops():
    paginator = StartIdPaginator()
    paginator.update(page([f"b{i}" for i in range(20)]))
    # A server that treats startId as inclusive sends the last item back alone.
    assert paginator.update(page(["b19"])) == []
    assert paginator.stop_reason == STOP_NO_NEW_IDS


def test_overlapping_page_returns_only_new_ids():
    paginator = StartIdPaginator()
    paginator.update(page([f"b{i}" for i in range(20)]))
    items = paginator.update(page(["b19"] + [f"c{i}" for i in range(19)]))
    assert ids_of(items) == [f"c{i}" for i in range(19)]
    assert paginator.has_next
    assert paginator.next_params() == {"startId": "c18"}


def test_same_page_twice_raises():
    paginator = StartIdPaginator("/database/d1/backup")
    full = page([f"b{i}" for i in range(20)])
    paginator.update(full)
    with pytest.raises(PaginationError) as caught:
        paginator.update(full)
    assert "startId=b19" in str(caught.value)
    assert caught.value.path == "/database/d1/backup"


def test_page_cap_stops_paging():
    paginator = StartIdPaginator(max_pages=2)
    paginator.update(page([f"a{i}" for i in range(20)]))
    assert paginator.has_next
    paginator.update(page([f"b{i}" for i in range(20)]))
    assert paginator.stop_reason == STOP_PAGE_CAP


def test_caller_stop_keeps_first_reason():
    paginator = StartIdPaginator()
    paginator.stop("lookback")
    paginator.stop("other")
    assert paginator.stop_reason == "lookback"
    assert not paginator.has_next


@pytest.mark.parametrize(
    "body",
    [[], "text", {"results": {"id": "a"}}, {"results": [{"name": "no id"}]}, {"results": [{"id": 5}]}],
)
def test_malformed_body_raises(body):
    with pytest.raises(QoveryResponseError):
        StartIdPaginator("/database/d1/backup").update(body)
