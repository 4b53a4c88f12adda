"""Load Qovery backup history into DuckDB: the smallest pipeline built on the source.

Set SOURCES__QOVERY__API_TOKEN (and SOURCES__QOVERY__ORGANIZATION_ID when the token sees
several organizations), then run `python pipelines/qovery_backups_pipeline.py`.
"""

import logging

import dlt

from qovery_backups.source import qovery_source


def load_backups() -> None:
    pipeline = dlt.pipeline(
        pipeline_name="qovery_backups",
        destination="duckdb",
        dataset_name="qovery",
    )
    load_info = pipeline.run(qovery_source())
    logging.getLogger(__name__).info("%s", load_info)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    load_backups()
