"""``GodotShipper``: drain a ``GodotHandler`` to Godot over one MCP WebSocket.

One background task that drives a ``ClientProtocol`` over its own
``websockets`` connection (``initialize``, then one ``tools/call
logger_log`` per entry), batching, fragmenting and slicing its work so that
a request never waits behind more than one short stretch of it. See
``iccm_network.godot`` for the whole design and its figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any, Final, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidURI, WebSocketException
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from iccm_network.godot.handler import LOGGER_LOG, GodotHandler, _clip
from iccm_network.logs import SHIPPER_HEADER, redact_url
from iccm_network.protocol.client import ClientProtocol, ClientProtocolError, Reply, Request
from iccm_network.transport.client import WebSocketTransport
from iccm_network.transport.connect import Endpoint
from iccm_network.transport.handshake import initialize

__all__ = ["PROTOCOL_VERSION", "GodotShipper"]

logger = logging.getLogger("iccm_network.godot")

T = TypeVar("T")

PROTOCOL_VERSION: Final = "2025-06-18"

_STRETCH: Final = 15e-6
"""Seconds of shipping work after which the shipper yields to the event loop,
so that a request arriving meanwhile waits about that long at most."""

_TAKE: Final = 2
"""Entries taken from the queue at a time while a batch is built."""

_FRAGMENT: Final = 8 * 1024
"""Characters of a batch sent in one WebSocket frame (one write)."""

_BATCH_BUDGET: Final = 256 * 1024
"""Characters of requests in one batch message, beyond which a window is cut
short: far below the 1 MiB message limit common among WebSocket servers
(the ``websockets`` default), even with the last entries taken added."""


async def _within(seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """``await work``, raising ``TimeoutError`` after ``seconds``.

    One timer for a whole exchange: ``asyncio.timeout`` costs no task where
    it exists (3.11+), which matters on a path run for every entry.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await work
    return await asyncio.wait_for(work, seconds)


async def _fragments(text: str) -> AsyncIterator[str]:
    """``text`` in pieces of ``_FRAGMENT`` characters, yielding to the event loop before each.

    Sent as the fragments of one message (RFC 6455, section 5.4), a large
    batch costs several short writes instead of one long one.
    """
    for start in range(0, len(text), _FRAGMENT):
        await asyncio.sleep(0)
        yield text[start : start + _FRAGMENT]


class _Stretch:
    """A stretch of work that yields to the event loop every ``_STRETCH`` seconds.

    Shipping work comes in loops over entries or replies whose cost per item
    varies (an entry with a traceback takes many times longer to encode than
    one without), so the loops yield by the clock rather than by count.
    """

    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since = time.perf_counter()

    async def check(self) -> None:
        """Yield to the event loop if this stretch has run ``_STRETCH`` seconds."""
        if time.perf_counter() - self._since >= _STRETCH:
            await asyncio.sleep(0)
            self._since = time.perf_counter()


_DECODER: Final = json.JSONDecoder()
_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")


def _skip(text: str, index: int) -> int:
    """The index of the first character at or after ``index`` that is not JSON whitespace."""
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


async def _decode(frame: str | bytes, stretch: _Stretch | None = None) -> Any:
    """``json.loads(frame)``, yielding to the event loop within a long array.

    The replies to a batch come as one array, and decoding it whole would be
    the longest stretch of work the shipper does between two requests. Its
    elements are decoded by the standard decoder a stretch at a time; anything
    that is not a well-formed array (a single reply, bytes, invalid JSON)
    goes to ``json.loads`` whole, which raises ``ValueError`` where it must.
    """
    if not isinstance(frame, str):
        return json.loads(frame)
    index = _skip(frame, 0)
    if not frame.startswith("[", index):
        return json.loads(frame)
    items: list[Any] = []
    stretch = stretch or _Stretch()
    index = _skip(frame, index + 1)
    while not frame.startswith("]", index):
        if items:
            if not frame.startswith(",", index):
                return json.loads(frame)
            index = _skip(frame, index + 1)
            await stretch.check()
        try:
            item, index = _DECODER.raw_decode(frame, index)
        except ValueError:
            return json.loads(frame)
        items.append(item)
        index = _skip(frame, index)
    if _skip(frame, index + 1) != len(frame):
        return json.loads(frame)  # text after the array
    return items


class _Unusable(Exception):
    """Godot answered, but not as an MCP server with a working handshake."""


class _NoBatches(Exception):
    """Godot answered a batch frame with something other than its replies."""


class GodotShipper:
    """Drain a ``GodotHandler`` to Godot over one MCP WebSocket connection.

    Args:
        url: Godot's ``ws://`` or ``wss://`` URL (``GODOT_URL``).
        handler: The queue to drain.
        connect_timeout: Seconds for TCP, TLS and the WebSocket handshake.
        reply_timeout: Seconds for each exchange: sending entries and
            reading all their replies.
        window: Entries sent together (one batch message) before waiting
            for their replies. A batch is also cut short at about 256 KiB,
            so that it stays within a Godot's message size limit.
        linger: Seconds to let entries gather before sending fewer than
            ``window``: one message for many entries, for that delay in
            delivery. 0 sends what is queued at once (a message per entry
            under light load: several times the CPU per entry).
        backoff_initial: Seconds before the first reconnect attempt.
        backoff_max: The longest wait between attempts.
        report_interval: Seconds between local reports of dropped entries.

    Raises:
        ValueError: ``url`` is not a WebSocket URL.
    """

    def __init__(
        self,
        url: str,
        handler: GodotHandler,
        *,
        connect_timeout: float = 5.0,
        reply_timeout: float = 5.0,
        window: int = 256,
        linger: float = 0.05,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        report_interval: float = 60.0,
    ) -> None:
        try:
            parse_uri(url)
        except InvalidURI as exc:
            raise ValueError(f"not a ws:// or wss:// URL: {redact_url(url)!r}") from exc
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.url = url
        self._endpoint = Endpoint.parse(url)
        self.handler = handler
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self.window = window
        self.linger = linger
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.report_interval = report_interval
        self.delivered = 0
        """Entries Godot accepted."""
        self.rejected = 0
        """Entries Godot answered with an error."""
        self.lost = 0
        """Entries sent on a connection that failed before they were answered."""
        self.connections = 0
        """Connections that completed the MCP handshake."""
        self._rejected_reported = 0
        self._lost_reported = 0
        self._last_rejection = ""
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._healthy = True  # so that the first failure is reported
        self._connection: ClientConnection | None = None
        self._attempt = 0
        self._batching = True
        """Whether this connection sends batch frames."""
        self._batches_proven = False
        """Whether this connection answered a batch frame with its replies."""
        self._batches_next = True
        """Whether the next connection starts with batch frames."""

    @property
    def connected(self) -> bool:
        """Whether a handshaken connection to Godot is open now."""
        return self._connection is not None

    def start(self) -> None:
        """Start draining in the background; call from the event loop."""
        if self._task is not None:
            raise RuntimeError("the shipper is already started")
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        ready = self._ready

        def wakeup() -> None:
            if threading.get_ident() == loop_thread:
                ready.set()
                return
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
                loop.call_soon_threadsafe(ready.set)

        self.handler.set_wakeup(wakeup, at=self.window)
        self._task = asyncio.create_task(self._run(), name="iccm-network godot shipper")
        self._reporter = asyncio.create_task(self._report_loop(), name="iccm-network godot drops")

    async def aclose(self, flush_timeout: float = 2.0) -> None:
        """Stop: send what is queued, for up to ``flush_timeout`` seconds.

        Connects once to flush unless the last attempt failed: a Godot known
        to be away is not retried. Entries still queued after that are
        dropped and reported.

        Args:
            flush_timeout: Seconds to spend flushing.
        """
        self.handler.set_wakeup(None)
        self._closing.set()
        self._ready.set()
        tasks = [task for task in (self._task, self._reporter) if task is not None]
        if self._reporter is not None:
            self._reporter.cancel()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=flush_timeout)
            if not done:
                self._task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        left = self.handler.clear()
        self._report(unsent=left)

    # -- the connection ----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if self._closing.is_set():
                # One last try to flush, unless Godot is known to be away.
                if not len(self.handler) or not self._healthy:
                    return
            elif not len(self.handler):
                await self._wait_for_entries()
                continue
            try:
                await self._connect_and_pump()
            except Exception as exc:
                self._failed(exc)
            if self._closing.is_set():
                return
            delay = min(self.backoff_max, self.backoff_initial * 2**self._attempt)
            self._attempt = min(self._attempt + 1, 32)
            # Jitter spreads the reconnects of many services after a Godot restart.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay * random.uniform(0.5, 1.0))

    async def _connect_and_pump(self) -> None:
        connection = await connect(
            self.url,
            open_timeout=self.connect_timeout,
            close_timeout=1.0,
            additional_headers={SHIPPER_HEADER: self.handler.component},
            subprotocols=[Subprotocol("mcp")],
            # Entries are small: compressing each costs more CPU than it saves.
            compression=None,
            logger=logging.getLogger("iccm_network.godot.websockets"),
        )
        self._batching, self._batches_next = self._batches_next, True
        self._batches_proven = False
        # Entries carry repr()s of odd values already; str() is the last resort.
        protocol = ClientProtocol(
            protocol_version=PROTOCOL_VERSION,
            client_info={"name": f"{self.handler.component} log shipper", "version": "1"},
            default=str,
        )
        try:
            await initialize(
                WebSocketTransport.wrap(self._endpoint, connection), protocol, self.reply_timeout
            )
            self._connection = connection
            self.connections += 1
            self._attempt = 0  # a working connection restarts the backoff
            if not self._healthy:
                logger.info("shipping logs to Godot at %s again", redact_url(self.url))
            self._healthy = True
            await self._pump(connection, protocol)
        except BaseException:
            # A peer that stopped answering would only stall a closing handshake.
            connection.transport.abort()
            raise
        else:
            await connection.close()  # bounded by close_timeout
        finally:
            self._connection = None

    def _failed(self, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            reason = (
                f"timed out (connect limit {self.connect_timeout:g} s, "
                f"reply limit {self.reply_timeout:g} s)"
            )
        expected = isinstance(
            exc,
            (OSError, asyncio.TimeoutError, WebSocketException, _Unusable, ClientProtocolError),
        )
        if self._healthy:
            logger.warning(
                "cannot ship logs to Godot at %s: %s; retrying with backoff, "
                "keeping up to %d entries meanwhile",
                redact_url(self.url),
                reason,
                self.handler.capacity,
                exc_info=None if expected else exc,
            )
        else:
            logger.debug("Godot at %s still unreachable: %s", redact_url(self.url), reason)
        self._healthy = False

    async def _wait_for_entries(
        self,
        closed: asyncio.Future[None] | None = None,
        *,
        count: int = 1,
        timeout: float | None = None,
    ) -> None:
        """Wait until ``count`` entries are queued, closing, or ``closed`` is done.

        ``_ready`` is set by an entry landing in an empty queue, a full window,
        closing and Godot going away; ``timeout`` bounds the wait.
        """
        self._ready.clear()
        if (
            len(self.handler) >= count
            or self._closing.is_set()
            or (closed is not None and closed.done())
        ):
            return
        if timeout is None:
            await self._ready.wait()
            return
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await _within(timeout, self._ready.wait())

    async def _replies(
        self,
        connection: ClientConnection,
        protocol: ClientProtocol,
        ids: range,
        *,
        batch: bool = False,
    ) -> dict[int, Reply]:
        """Read until every id in ``ids`` is answered; run it under a deadline.

        The messages are decoded here, a stretch at a time, and each reply
        handed to ``protocol`` to match it to its request.

        Raises:
            _NoBatches: ``batch`` is true and Godot answered with a single
                error that is no reply to any of ``ids`` (a batch it could
                not read).
        """
        answers: dict[int, Reply] = {}
        while len(answers) < len(ids):
            if answers:
                await asyncio.sleep(0)  # recv() need not wait: let requests in between
            frame = await connection.recv()
            stretch = _Stretch()
            try:
                message = await _decode(frame, stretch)
            except ValueError:
                raise _Unusable("Godot sent a frame that is not JSON") from None
            if (
                batch
                and not answers
                and isinstance(message, dict)
                and "error" in message
                and message.get("id") not in ids
            ):
                raise _NoBatches(_clip(json.dumps(message.get("error"), default=str), 300))
            for item in message if isinstance(message, list) else [message]:
                await stretch.check()
                event = protocol.receive_message(item)
                if isinstance(event, Reply) and event.request.id in ids:
                    answers[event.request.id] = event
            for text in protocol.data_to_send():  # answers to Godot's own pings
                await connection.send(text)
        return answers

    async def _pump(self, connection: ClientConnection, protocol: ClientProtocol) -> None:
        # Idle, notice Godot going away now rather than with the next entry.
        closed = asyncio.ensure_future(connection.wait_closed())
        closed.add_done_callback(lambda _: self._ready.set())
        try:
            while True:
                if len(self.handler):
                    if len(self.handler) < self.window and not self._closing.is_set():
                        # A message and its reply cost far more than an entry
                        # in them: let entries gather into one message first,
                        # until a window is full (sending it as it fills, not
                        # in bursts every linger) or the linger is over.
                        if self.linger > 0:
                            await self._wait_for_entries(
                                closed, count=self.window, timeout=self.linger
                            )
                        else:
                            await asyncio.sleep(0)  # those logged by callbacks already due
                    if closed.done():
                        break  # keep the entries queued for the next connection
                    await self._ship(connection, protocol, await self._requests(protocol))
                    continue
                if self._closing.is_set():
                    return
                await self._wait_for_entries(closed)
                if closed.done():
                    break
            raise _Unusable(f"Godot closed the connection ({connection.close_code})")
        finally:
            closed.cancel()

    async def _requests(self, protocol: ClientProtocol) -> list[Request]:
        """Take up to a window of entries as prepared ``logger_log`` requests.

        Entries are built and encoded in short stretches, yielding to the
        event loop in between, so that no request waits behind a whole window.
        """
        requests: list[Request] = []
        taken_in_all = size = 0
        stretch = _Stretch()
        try:
            while len(requests) < self.window and size < _BATCH_BUDGET:
                await stretch.check()
                taken = self.handler.take(min(_TAKE, self.window - len(requests)))
                if not taken:
                    break
                taken_in_all += len(taken)
                for entry in taken:
                    request = protocol.prepare_call(LOGGER_LOG, entry)
                    requests.append(request)
                    size += len(request.text)
        except BaseException:
            self.lost += taken_in_all  # taken from the queue, never sent
            raise
        return requests

    async def _ship(
        self, connection: ClientConnection, protocol: ClientProtocol, requests: list[Request]
    ) -> None:
        """Send ``requests`` and read their replies, all within one reply timeout.

        Several requests go as one batch message unless this connection has
        shown it does not take batches. A batch answered with a single error
        is sent again one request at a time (so its entries are not lost), and
        the connection gets single messages from then on. A connection that
        fails during its first batch, before any batch was answered, makes
        the next connection start with single messages; that one tries
        batches again on the connection after it.
        """
        batched = self._batching and len(requests) > 1
        ids = range(requests[0].id, requests[-1].id + 1)

        async def exchange() -> dict[int, Reply]:
            if batched:
                protocol.send_batch(requests)
                (batch,) = protocol.data_to_send()
                await connection.send(batch if len(batch) <= _FRAGMENT else _fragments(batch))
                return await self._replies(connection, protocol, ids, batch=True)
            for request in requests:
                if request is not requests[0]:
                    # A send rarely waits, so a whole window would go out in one
                    # go: let requests in between entries.
                    await asyncio.sleep(0)
                protocol.send(request)
                for text in protocol.data_to_send():
                    await connection.send(text)
            return await self._replies(connection, protocol, ids)

        try:
            replies = await _within(self.reply_timeout, exchange())
        except _NoBatches as exc:
            self._batching = False
            logger.info(
                "Godot at %s does not take batches (%s); sending entries one by one",
                redact_url(self.url),
                exc,
            )
            await self._ship(connection, protocol, requests)
            return
        except BaseException:
            if batched and not self._batches_proven:
                self._batches_next = False
            self.lost += len(requests)
            raise
        if batched:
            self._batches_proven = True
        stretch = _Stretch()
        try:
            await asyncio.sleep(0)  # reading the replies was a stretch of its own
            while replies:
                await stretch.check()
                # Popped, each reply is freed here, a stretch at a time: freeing
                # a whole batch's replies at once is a stretch of its own.
                self._count(replies.popitem()[1].message)
        except asyncio.CancelledError:
            # Cancelled (a flush that ran out of time): the replies are in
            # hand, so every one is counted before the task ends.
            while replies:
                self._count(replies.popitem()[1].message)
            raise

    def _count(self, reply: Mapping[str, Any]) -> None:
        result = reply.get("result")
        if isinstance(result, dict) and not result.get("isError"):
            self.delivered += 1
            return
        self.rejected += 1
        if isinstance(result, dict):
            content = result.get("content") or [{}]
            detail = content[0].get("text", "") if isinstance(content[0], dict) else ""
        else:
            detail = json.dumps(reply.get("error"), default=str)
        self._last_rejection = _clip(str(detail), 300)

    # -- local reports -----------------------------------------------------------

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.report_interval)
            self._report()

    def _report(self, unsent: int = 0) -> None:
        dropped = self.handler.take_dropped()
        lost, self._lost_reported = self.lost - self._lost_reported, self.lost
        rejected, self._rejected_reported = (
            self.rejected - self._rejected_reported,
            self.rejected,
        )
        if dropped or lost or unsent:
            logger.warning(
                "Godot log shipping dropped %d entries (queue full: %d, lost with a "
                "failed connection: %d, unsent at shutdown: %d)",
                dropped + lost + unsent,
                dropped,
                lost,
                unsent,
            )
        if rejected:
            logger.warning(
                "Godot rejected %d log entries; the last said: %s",
                rejected,
                self._last_rejection,
            )
