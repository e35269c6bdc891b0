"""`kran-agent`: serves this host's images and keeps the node registered."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from agent import config
from agent.config import AgentConfig
from agent.images.service import ImagesService
from agent.images.store import ImageStore
from agent.metrics import keep_image_gauges
from agent.registration import Registration, describe_host
from agent.service import AgentService
from kran import defaults, errors, logs
from kran.api.v1 import images_pb2, images_pb2_grpc, system_pb2, system_pb2_grpc
from kran.metrics import UP, serve_metrics
from kran.server import start_server

log = logging.getLogger("agent")

STOP_GRACE = 5.0


async def run(cfg: AgentConfig) -> None:
    """Run the agent until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    node_id = config.load_node_id(cfg.state_dir)
    store = ImageStore(cfg.state_dir / "images")
    server = await start_server(cfg.listen, [
        (images_pb2_grpc.add_ImagesServicer_to_server, ImagesService(store),
         images_pb2.DESCRIPTOR.services_by_name["Images"].full_name),
        (system_pb2_grpc.add_AgentServicer_to_server, AgentService(node_id, cfg.state_dir, store),
         system_pb2.DESCRIPTOR.services_by_name["Agent"].full_name),
    ])
    registration = Registration(cfg.controller, node_id,
                                describe_host(cfg.hostname, cfg.advertise_addr, cfg.labels))
    tasks: list[asyncio.Task[None]] = []
    try:
        if cfg.metrics_addr:
            serve_metrics(cfg.metrics_addr, defaults.AGENT_METRICS_PORT)
        tasks = [asyncio.create_task(registration.run()),
                 asyncio.create_task(keep_image_gauges(store))]
        UP.labels("agent").set(1)
        log.info("agent serving", extra={"node": node_id, "listen": cfg.listen,
                                         "advertise": cfg.advertise_addr,
                                         "controller": cfg.controller,
                                         "metrics": cfg.metrics_addr or "off",
                                         "state_dir": str(cfg.state_dir)})
        await stop.wait()
        log.info("stopping agent", extra={"node": node_id})
    finally:
        UP.labels("agent").set(0)
        registration.stop()
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop(STOP_GRACE)
        store.close()


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the agent until it is stopped; returns the exit status."""
    try:
        cfg = config.parse(argv)
    except errors.KranError as exc:
        print(f"kran-agent: {exc}", file=sys.stderr)
        return 2
    logs.setup(cfg.log_level)
    try:
        asyncio.run(run(cfg))
    except (OSError, errors.KranError) as exc:
        log.error(f"cannot start the agent: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
