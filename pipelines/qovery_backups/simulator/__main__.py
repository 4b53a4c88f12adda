"""Serve the demo world until interrupted: ``python -m qovery_backups.simulator --port 8080``."""

from __future__ import annotations

import argparse
import logging
import threading
from datetime import UTC, datetime

from qovery_backups.simulator.server import DEFAULT_TOKEN, SimulatorServer
from qovery_backups.simulator.world import World

logger = logging.getLogger("qovery_backups.simulator")


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m qovery_backups.simulator",
        description="Serve a simulated Qovery API with the demo world on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: 0, a free port)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated ids and data (default: 7)")
    parser.add_argument(
        "--token",
        action="append",
        help=f"token the server accepts after 'Token' or 'Bearer', repeatable (default: {DEFAULT_TOKEN})",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request at DEBUG level")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Serve the demo world, with its clock set to the current time, until interrupted."""
    arguments = _parse_arguments(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    world = World.demo(datetime.now(UTC), seed=arguments.seed)
    server = SimulatorServer(world, tokens=arguments.token or [DEFAULT_TOKEN], port=arguments.port)
    with server:
        print(server.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            logger.info("interrupted, stopping")


if __name__ == "__main__":
    main()
