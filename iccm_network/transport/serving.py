"""Running a ``ServerProtocol``'s calls for any server transport.

The WebSocket connection and the Streamable HTTP exchange both drive one
``ServerProtocol`` and hand its calls to a ``CallRunner``: it starts each call
(awaiting its tool, or through ``run_call``), cancels what the client
cancels, completes the protocol with the ``Outcome`` and sends what the
protocol produces through a ``Channel``, progress notifications included. A
transport only says how frames leave.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, Protocol

from iccm_network.logs import CallLog
from iccm_network.protocol.outcomes import Cancelled, Outcome, Raised, Returned, ShutDown
from iccm_network.protocol.server import ServerProtocol, ToolCall
from iccm_network.transport.calls import (
    WorkerThreads,
    awaited_in_place,
    cancelled_outcome,
    run_call,
    tool_arguments,
)

__all__ = ["CallRunner", "Channel", "tell_resource_updated"]


class Channel(Protocol):
    """Where a transport sends one protocol's frames.

    ``sending`` serializes writers, so a reply is shaped only when the
    channel has room for it. ``send_reply`` and ``send_notification`` never
    raise because the peer went away; ``is_open`` says whether it did.
    """

    sending: asyncio.Lock
    calls_begun: int

    def is_open(self) -> bool:
        """True while the peer can still receive frames."""

    def has_room(self) -> bool:
        """True when replies can be written now, without waiting for the peer."""

    def write_replies(self, frames: list[str]) -> None:
        """Write replies without waiting; only right after ``has_room()`` said so.

        A channel may hold them to the end of the event loop's turn, to write
        that turn's replies together; nothing it sends meanwhile overtakes them.

        Args:
            frames: Encoded frames, in order.
        """

    async def send_replies(self, frames: list[str]) -> None:
        """Send replies the protocol produced (responses, errors, batches).

        Args:
            frames: Encoded frames, in order.
        """

    async def send_notification(self, frame: str) -> None:
        """Send a notification for a running call (progress, a log message).

        Args:
            frame: One encoded frame.
        """


async def tell_resource_updated(channel: Channel, protocol: ServerProtocol, uri: str) -> None:
    """Tell ``channel``'s client that ``uri`` changed, if it subscribed to it.

    Args:
        channel: Where the client is.
        protocol: The client's protocol, which knows its subscriptions.
        uri: The resource that changed.
    """
    protocol.resource_updated(uri)
    frames = protocol.data_to_send()
    if frames and channel.is_open():
        async with channel.sending:
            for frame in frames:
                await channel.send_notification(frame)


class CallRunner:
    """Starts, cancels and completes one protocol's calls.

    Args:
        protocol: The protocol whose calls to run.
        channel: Where replies and notifications go.
        workers: Where sync tools run.
        default_timeout: Seconds for tools that set no ``timeout``.
        abandoning: Says whether a cancellation comes from shutdown (the call
            then gets a tool error) rather than from the client.
        call_log: Where each finished call is logged or counted.
    """

    __slots__ = (
        "_abandoning",
        "_call_log",
        "_channel",
        "_default_timeout",
        "_protocol",
        "_workers",
        "tasks",
    )

    def __init__(
        self,
        protocol: ServerProtocol,
        channel: Channel,
        workers: WorkerThreads,
        *,
        default_timeout: float | None,
        abandoning: Callable[[], bool],
        call_log: CallLog,
    ) -> None:
        self._protocol = protocol
        self._channel = channel
        self._workers = workers
        self._default_timeout = default_timeout
        self._abandoning = abandoning
        self._call_log = call_log
        # Each running call's task; a finished task removes itself.
        self.tasks: dict[asyncio.Task[None], ToolCall] = {}

    def start_calls(self) -> int:
        """Start the calls the protocol accepted and cancel those it cancelled.

        Returns:
            The number of calls started.
        """
        protocol = self._protocol
        tasks = self.tasks
        calls = protocol.calls_to_run()
        for call in calls:
            task = asyncio.create_task(self._run(call))
            tasks[task] = call
            task.add_done_callback(tasks.pop)
        for call in protocol.calls_to_cancel():
            for task, running in tasks.items():  # rare: a linear search will do
                # A task cancelled before its first step would end without
                # _run completing (and logging) the call; an unstarted one
                # sees call.cancelled instead.
                if running is call and not _unstarted(task):
                    task.cancel()
        return len(calls)

    async def send(self, frames: list[str]) -> None:
        """Send replies the protocol produced outside a call (a ping's, a batch's).

        Args:
            frames: Encoded frames, in order.
        """
        channel = self._channel
        if self._writable():
            channel.write_replies(frames)
            return
        async with channel.sending:
            await channel.send_replies(frames)

    def _writable(self) -> bool:
        # Nobody waits to send, and the peer reads: a reply written now needs
        # neither the lock nor a wait for room.
        channel = self._channel
        return not channel.sending.locked() and channel.has_room()

    def cancel_all(self) -> None:
        """Cancel every running call (the peer is gone).

        A call whose task has not started yet is marked instead: cancelling
        that task would end it before ``_run`` logs the call.
        """
        for task, call in self.tasks.items():
            if _unstarted(task):
                call.cancelled = True
            else:
                task.cancel()

    async def _run(self, call: ToolCall) -> None:
        channel = self._channel
        channel.calls_begun += 1
        tool = call.tool
        started = time.perf_counter()
        outcome: Outcome
        send_progress = send_log = None
        if tool.context_parameter is not None:
            task = asyncio.current_task()
            assert task is not None
            send_progress = functools.partial(self._send_progress, task)
            send_log = functools.partial(self._send_log, call, task)
        try:
            if call.cancelled:  # cancelled before it started
                raise asyncio.CancelledError
            if awaited_in_place(call, self._default_timeout):
                # Most calls: the tool's own coroutine, awaited in this task.
                try:
                    outcome = Returned(
                        await tool.fn(**tool_arguments(call, send_progress, send_log))
                    )
                except asyncio.CancelledError:
                    outcome = cancelled_outcome(tool.name)
                except Exception as exc:
                    outcome = Raised(exc)
            else:
                outcome = await run_call(
                    call,
                    self._workers,
                    default_timeout=self._default_timeout,
                    send_progress=send_progress,
                    send_log=send_log,
                )
        except asyncio.CancelledError:
            outcome = ShutDown() if self._abandoning() else Cancelled()
        self._call_log.finished(
            tool.name, call.request_id, (time.perf_counter() - started) * 1000, outcome.label
        )
        # Replies are shaped one at a time, when the channel has room for
        # them: a client that does not read holds back its calls' outcomes,
        # never a pile of encoded frames.
        protocol = self._protocol
        if self._writable():
            protocol.complete(call, outcome)
            frames = protocol.data_to_send()
            if frames:
                channel.write_replies(frames)
            return
        async with channel.sending:
            protocol.complete(call, outcome)
            del outcome
            frames = protocol.data_to_send()
            if frames:
                await channel.send_replies(frames)

    async def _send_progress(self, task: asyncio.Task[None], params: dict[str, Any]) -> None:
        await self._send_notification(task, self._protocol.progress_frame(params))

    async def _send_log(
        self, call: ToolCall, task: asyncio.Task[None], params: dict[str, Any]
    ) -> None:
        frame = self._protocol.log_frame(call, params)
        if frame is not None:
            await self._send_notification(task, frame)

    async def _send_notification(self, task: asyncio.Task[None], frame: str) -> None:
        channel = self._channel
        if channel.is_open():
            async with channel.sending:
                await channel.send_notification(frame)
            # A tool may report in a tight loop; each report lets the rest
            # of the server run.
            await asyncio.sleep(0)
        if not channel.is_open():
            # Nobody is left to read the result: the call ends here.
            task.cancel()
            raise asyncio.CancelledError


def _unstarted(task: asyncio.Task[None]) -> bool:
    coro = task.get_coro()
    return inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
