"""Ship log records to Godot's ``logger_log`` tool without ever slowing a request.

Two pieces with one job each:

- ``GodotHandler`` is a ``logging.Handler`` whose ``emit()`` only captures
  what cannot wait (the message, level, time, logger name, ``extra=`` fields,
  exception text) in a tuple and appends it to a bounded in-memory queue. It
  never blocks and never does I/O, and it is safe to call from worker threads
  (sync tools log from there). When the queue is full the oldest entry is
  dropped and counted. Turning a capture into an entry (time formatting,
  JSON) happens in the shipper, off the request path.
- ``GodotShipper`` is one background task that drains the queue over one
  WebSocket connection speaking MCP (``initialize``, then one ``tools/call
  logger_log`` per entry). Entries gather for up to ``linger`` (50 ms, or
  until a window of 256 is queued) and go as one JSON-RPC batch message,
  read back as one array of replies: a message and its reply cost the
  server about 100 microseconds (measured on loopback), an entry in a batch
  a few, so batches cut what shipping costs per entry several times over.
  A batch is built, sent (as the fragments of one message), and its replies
  decoded and counted in stretches of about 15 microseconds, yielding to
  the event loop in between, so that a request never waits behind more
  than one stretch of that work. A Godot that answers a batch with anything
  but replies to its requests (a legacy server that takes single messages
  only) gets the entries of that batch again one by one, and single
  messages from then on on that connection; one whose connection fails
  during its first batch gets single messages on the next connection.
  Connecting and every exchange are bounded by timeouts; a Godot that is
  down or that accepts and never answers costs reconnect attempts with
  exponential backoff and jitter, and dropped entries, nothing else. Drops
  are logged locally at most once a minute. Batches are cut at about 256
  KiB, well within the 1 MiB message limit many WebSocket servers keep.

``shipping_logs()`` wires the two together for as long as a server runs;
``App.serve()`` uses it when ``GODOT_URL`` is set and ``LOGGING_ENABLED`` is
not false.

The handler lives in ``iccm_network.godot.handler``, the shipper in
``iccm_network.godot.shipper``; both are importable from here. The shipper
drives a ``ClientProtocol`` (as every client does) over a ``websockets``
connection of its own rather than through ``MCPClient``: it needs a policy
of its own (never raise into callers, drop rather than wait, stay out of the
logs it ships) and slices its work finer than a client would.

Feedback is cut in three places, so that a Godot built with this library can
ship to itself: records of the ``iccm_network.godot`` loggers (the shipper's
own) are ignored; records logged while serving a shipper's connection (see
``iccm_network.logs.mark_shipper_connection``) or carrying ``log_shipper``
are ignored; and per-call records for ``logger_log`` (the ``tool`` extra) are
ignored, as are per-call records of calls that succeeded (``outcome == "ok"``):
Godot gets connection events, errors and start/stop, not every call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from iccm_network.godot.handler import GodotHandler, godot_level
from iccm_network.godot.shipper import GodotShipper

__all__ = [
    "GodotHandler",
    "GodotShipper",
    "godot_level",
    "shipping_logs",
]

logger = logging.getLogger("iccm_network.godot")


@contextlib.asynccontextmanager
async def shipping_logs(
    url: str | None,
    component: str,
    *,
    logger_name: str = "iccm_network",
    capacity: int = 1000,
    level: int = logging.INFO,
    flush_timeout: float = 2.0,
    **options: Any,
) -> AsyncIterator[GodotShipper | None]:
    """Ship the records of ``logger_name`` to Godot for the ``async with`` block.

    Does nothing (and yields ``None``) when ``url`` is ``None``; an invalid
    URL is logged as an error and shipping stays off, because logging must
    never stop a service from starting.

    Args:
        url: Godot's WebSocket URL, or ``None`` for no shipping.
        component: The ``component`` of every entry (the app's name).
        logger_name: The logger the handler is attached to.
        capacity: Entries kept while Godot is slow or away.
        level: The least severe level shipped (the logger's own level
            applies first). Below INFO, frame-level debug lines would be
            shipped too, so keep it at INFO unless debugging.
        flush_timeout: Seconds spent sending what is queued at the end.
        **options: ``GodotShipper`` options, such as ``reply_timeout``.
    """
    if url is None:
        yield None
        return
    handler = GodotHandler(component, capacity=capacity, level=level)
    try:
        shipper = GodotShipper(url, handler, **options)
    except ValueError as exc:
        logger.error("GODOT_URL: %s; log shipping is off", exc)
        yield None
        return
    target = logging.getLogger(logger_name)
    shipper.start()
    target.addHandler(handler)
    try:
        yield shipper
    finally:
        target.removeHandler(handler)
        await shipper.aclose(flush_timeout)
