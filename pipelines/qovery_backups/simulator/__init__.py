"""A local simulator of the Qovery API endpoints that list databases and their backups.

It serves a generated :class:`World` over HTTP on 127.0.0.1, with the JSON
shapes of Qovery's OpenAPI specification (``qovery-openapi-excerpt.yaml`` in
this package), token checks and deterministic fault injection. The demo
command, the tests and the benchmarks run against it because nothing here
reaches the real API.
"""

from qovery_backups.simulator.faults import Faults
from qovery_backups.simulator.records import Outcome, format_timestamp
from qovery_backups.simulator.server import DEFAULT_TOKEN, RequestRecord, SimulatorServer
from qovery_backups.simulator.world import PAGE_SIZE, World

__all__ = [
    "DEFAULT_TOKEN",
    "PAGE_SIZE",
    "Faults",
    "Outcome",
    "RequestRecord",
    "SimulatorServer",
    "World",
    "format_timestamp",
]
