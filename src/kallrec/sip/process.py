"""The SIP process: listeners, the calls, and the background work its sessions need.

It shares the database and storage with the HTTP workers (the same Settings, the same
Runtime), writes tracks where they do, and runs the same background loop (kallrec.jobs.runner)
with one job worker, so a session that ends here is finalized at once instead of waiting for a
worker's next poll. SIGTERM (kallrec serve stopping) hangs every call up and ends its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from kallrec.config import (
    Settings,
    parse_rtp_ports,
    parse_sip_credentials,
    parse_sip_trunks,
)
from kallrec.jobs.runner import run_background
from kallrec.metrics import SipMetrics
from kallrec.runtime import Runtime
from kallrec.sip.agent import Agent
from kallrec.sip.calls import Calls
from kallrec.sip.digest import DigestGuard
from kallrec.sip.media import PortPool
from kallrec.sip.transports import transports

log = logging.getLogger("kallrec.sip")
USER_AGENT = "kallrec"
# Session timers (RFC 4028): a call nobody refreshes for this long is dead and ends.
SESSION_EXPIRES = 1800
MIN_SE = 90


async def serve(settings: Settings) -> None:
    rt = Runtime(settings)
    metrics = SipMetrics()
    first, last = parse_rtp_ports(settings.rtp_ports)
    calls = Calls(
        rt,
        metrics,
        PortPool(first, last, "0.0.0.0"),
        parse_sip_trunks(settings.sip_trunks),
        settings.sip_advertised_address,
        DigestGuard(parse_sip_credentials(settings.sip_credentials)),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    agents = []
    for proto, transport in transports(settings):
        advertised = None
        if settings.sip_advertised_address:
            advertised = (settings.sip_advertised_address, transport.local_addr[1])
        uas = Agent(
            transport,
            user_agent=USER_AGENT,
            advertised_addr=advertised,
            session_expires=SESSION_EXPIRES,
            min_se=MIN_SE,
        )
        uas.metrics = metrics
        calls.attach(uas)
        await uas.start()
        agents.append(uas)
        log.info("SIP listening on %s %s:%d", proto, *transport.local_addr)
    background = loop.create_task(run_background(rt, concurrency=1))
    try:
        await stop.wait()
    finally:
        await calls.close()
        for uas in agents:
            with contextlib.suppress(Exception):
                await uas.stop()
        background.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background
        rt.close()


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level.upper(), format="[%(levelname)s] %(name)s: %(message)s"
    )
    # aiosipua logs a malformed datagram with its traceback: one line is enough.
    logging.getLogger("aiosipua").setLevel(logging.ERROR)
    asyncio.run(serve(settings))
