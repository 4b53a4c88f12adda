"""Marking what the API no longer lists: deleted backups after a full scan, vanished databases.

A full scan yields every backup the API lists for a database, and dlt's delete-insert merge
rewrites each of those rows with the current load id. Once the scan is loaded, the database's
rows that no load of this run touched are exactly the backups the API stopped listing, so one
UPDATE marks them without keeping their ids in memory. Rows are never deleted: `deleted_at` is
the time of the scan that first missed them, and a row the API lists again is re-yielded with
`deleted_at` NULL by the merge.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Iterable, Sequence

import dlt

from qovery_backups import settings

logger = logging.getLogger(__name__)


def supports_sql(pipeline: dlt.Pipeline) -> bool:
    """Return whether the destination's tables accept UPDATE statements.

    The filesystem destination offers a read-only SQL client over its files, so it does not.
    """
    if pipeline.destination is None or pipeline.destination.destination_name == "filesystem":
        return False
    try:
        pipeline.sql_client()
    except Exception as error:  # dlt raises a destination-specific error for non-SQL ones
        logger.debug("Destination has no SQL client: %s", error)
        return False
    return True


def mark_deleted_backups(
    pipeline: dlt.Pipeline,
    database_ids: Sequence[str],
    load_ids: Sequence[str],
    scanned_at: datetime,
) -> dict[str, int]:
    """Set `deleted_at` on the backups of fully scanned databases that this run did not load.

    Returns the number of backups newly marked, per database id.
    """
    if not database_ids or not load_ids:
        return {}
    marked: dict[str, int] = {}
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name(settings.BACKUPS_TABLE)
        load_placeholders = ", ".join(["%s"] * len(load_ids))
        for database_id in database_ids:
            condition = (
                f"database_id = %s AND deleted_at IS NULL "
                f"AND _dlt_load_id NOT IN ({load_placeholders})"
            )
            count = _mark_deleted(client, table, condition, (database_id, *load_ids), scanned_at)
            if count:
                logger.info(
                    "Database %s: %d backups no longer listed by the API, marked deleted",
                    database_id,
                    count,
                )
            marked[database_id] = count
    return marked


def mark_deleted_databases(
    pipeline: dlt.Pipeline,
    organization_id: str,
    found_ids: Iterable[str],
    discovered_at: datetime,
) -> int:
    """Set `deleted_at` on the organization's databases that discovery no longer finds."""
    found = list(found_ids)
    with pipeline.sql_client() as client:
        if not _table_exists(client, settings.DATABASES_TABLE):
            return 0
        table = client.make_qualified_table_name(settings.DATABASES_TABLE)
        condition = "organization_id = %s AND deleted_at IS NULL"
        params: tuple = (organization_id,)
        if found:
            condition += f" AND id NOT IN ({', '.join(['%s'] * len(found))})"
            params += tuple(found)
        count = _mark_deleted(client, table, condition, params, discovered_at)
        if count:
            logger.info(
                "%d databases of organization %s are no longer found by discovery, marked deleted",
                count,
                organization_id,
            )
    return count


def _mark_deleted(client, table: str, condition: str, params: tuple, when: datetime) -> int:
    """Set `deleted_at = when` on the rows matching `condition` and return how many there were."""
    rows = client.execute_sql(f"SELECT count(*) FROM {table} WHERE {condition}", *params)
    count = int(rows[0][0])
    if count:
        client.execute_sql(f"UPDATE {table} SET deleted_at = %s WHERE {condition}", when, *params)
    return count


def _table_exists(client, name: str) -> bool:
    rows = client.execute_sql(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = %s AND table_name = %s",
        client.dataset_name,
        name,
    )
    return int(rows[0][0]) > 0
