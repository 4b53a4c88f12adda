"""Airflow DAG that loads Qovery backups every hour with dlt's Airflow helper.

Copy this file to the Airflow `dags/` folder and install `qovery-backups` (with the extra of
your destination, e.g. `qovery-backups[postgres]`) into the Airflow environment. The token
and the destination credentials come from dlt's configuration as for the CLI: environment
variables of the workers (`SOURCES__QOVERY__API_TOKEN`, `DESTINATION__POSTGRES__CREDENTIALS`)
or `dags/.dlt/secrets.toml`, where `PipelineTasksGroup` looks for the `.dlt` folder.

State between runs lives in the destination. `PipelineTasksGroup` gives every task a fresh
local pipeline folder and wipes it afterwards (`wipe_local_data=True`), so each run restores
the cursors from the destination's `_dlt_pipeline_state` table before it extracts.

`max_active_runs=1` keeps two runs from loading the same dataset at once: dlt takes no lock
on a warehouse. The task runs the source with `pipeline.run`, not through the CLI, so it has
no run summary and no exit code 3. A database whose backups could not be read is logged as a
warning or error, and the task still succeeds.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.decorators import dag

from dlt.helpers.airflow_helper import PipelineTasksGroup

DESTINATION = "postgres"


@dag(
    schedule="17 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data", "retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["qovery", "dlt"],
)
def qovery_backups():
    # Imported inside the DAG function so that the scheduler parses this file quickly.
    from qovery_backups.pipeline import build_pipeline
    from qovery_backups.source import qovery_source

    tasks = PipelineTasksGroup(
        "qovery_backups",
        use_data_folder=False,
        wipe_local_data=True,
    )
    pipeline = build_pipeline(destination=DESTINATION)
    # A callable is called inside the task, so configuration is read on the worker at run
    # time rather than when the scheduler parses the DAG.
    tasks.add_run(pipeline, qovery_source, decompose="none", trigger_rule="all_done", retries=0)


qovery_backups()
