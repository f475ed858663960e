"""Running one tool call: its ``Context``, its timeout, and where it runs.

The WebSocket server and the in-memory connection of ``iccm_network.testing``
both run calls through ``CallRunner`` (``transport.serving``), so what a test
sees is what a client gets. An async tool without a timeout is awaited in the
call's own task (``awaited_in_place``); any other call goes through
``run_call``: async tools in a second task that a timeout can abandon, sync
tools on ``WorkerThreads``, and an awaitable a sync tool returns is awaited.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import queue
import threading
from collections.abc import Callable
from typing import Any

from iccm_network.context import Context, LogSender, ProgressSender
from iccm_network.protocol.outcomes import Outcome, Raised, Returned, TimedOut
from iccm_network.protocol.server import ToolCall

__all__ = ["WorkerThreads", "awaited_in_place", "cancelled_outcome", "run_call", "tool_arguments"]


class WorkerThreads:
    """A small pool of daemon threads for sync tools.

    ``ThreadPoolExecutor`` joins its threads at interpreter exit, so one tool
    stuck in a system call would keep a stopped server's process alive until
    Docker kills it. Daemon threads do not; a call that is cancelled or timed
    out before a thread picks it up is skipped.

    Args:
        limit: The most threads to start.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._jobs: queue.SimpleQueue[
            tuple[contextvars.Context, Callable[[], Any], asyncio.Future[Any]] | None
        ] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._stopped = False

    def submit(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run ``fn`` on a worker thread; the future settles on the running loop.

        Args:
            fn: The work, taking no arguments.
        """
        if self._stopped:
            raise RuntimeError("the server has shut down")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._jobs.put((contextvars.copy_context(), fn, future))
        with self._lock:
            if self._idle > 0:
                self._idle -= 1  # claimed: that thread takes this job
                return future
            if self._threads >= self._limit:
                return future  # queued until a thread is free
            self._threads += 1
        thread = threading.Thread(target=self._work, name="iccm-network-tool", daemon=True)
        thread.start()
        return future

    def stop(self) -> None:
        """Let idle threads exit; busy ones exit when their call returns."""
        with self._lock:
            self._stopped = True
            threads = self._threads
        for _ in range(threads):
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            context, fn, future = job
            if not future.cancelled():
                self._run(context, fn, future)
            with self._lock:
                self._idle += 1

    @staticmethod
    def _run(
        context: contextvars.Context, fn: Callable[[], Any], future: asyncio.Future[Any]
    ) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = context.run(fn)
        except Exception as exc:
            error = exc
        except BaseException as exc:
            # SystemExit or KeyboardInterrupt from a tool must not reach the
            # event loop, which would stop the whole server.
            error = RuntimeError(f"the tool raised {type(exc).__name__}")
        try:
            future.get_loop().call_soon_threadsafe(_settle, future, result, error)
        except RuntimeError:
            pass  # the loop has closed: nobody is waiting for the answer


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _consume(future: asyncio.Future[Any]) -> None:
    # Work abandoned after a timeout may still fail; asyncio would log that
    # as "exception was never retrieved".
    if not future.cancelled():
        future.exception()


def tool_arguments(
    call: ToolCall, send_progress: ProgressSender | None, send_log: LogSender | None
) -> dict[str, Any]:
    """The keyword arguments of ``call``'s tool: its arguments, and its ``Context`` if it takes one.

    Args:
        call: A call the protocol accepted.
        send_progress: Sends one ``notifications/progress`` for the call's
            ``Context``; only tools that take a ``Context`` need it.
        send_log: Sends one ``notifications/message`` for the ``Context``.
    """
    tool = call.tool
    kwargs = call.arguments
    if tool.context_parameter is not None:
        kwargs[tool.context_parameter] = Context(
            request_id=call.request_id,
            protocol_version=call.features.version,
            client_info=call.client_info,
            progress_token=call.progress_token,
            send_progress=send_progress,
            send_log=send_log,
            log_name=tool.name,
        )
    return kwargs


async def run_call(
    call: ToolCall,
    workers: WorkerThreads,
    *,
    default_timeout: float | None,
    send_progress: ProgressSender | None,
    send_log: LogSender | None = None,
) -> Outcome:
    """Run ``call`` in a task or thread of its own and return how it ended.

    The outcome is ``Returned``, ``Raised`` or ``TimedOut``. Unlike
    ``asyncio.wait_for``, a timeout does not wait for the tool to acknowledge
    its cancellation, so a tool that ignores it cannot hold the reply back.
    Calls that ``awaited_in_place`` accepts need none of this: the runner
    awaits their tools itself.

    Args:
        call: A call the protocol accepted.
        workers: Where sync tools run.
        default_timeout: Seconds for tools that set no ``timeout`` of their own.
        send_progress: Sends one ``notifications/progress`` for the call's
            ``Context``; only tools that take a ``Context`` need it.
        send_log: Sends one ``notifications/message`` for the ``Context``.

    Raises:
        asyncio.CancelledError: The call was cancelled (by the client, a
            closed connection or shutdown).
    """
    tool = call.tool
    kwargs = tool_arguments(call, send_progress, send_log)
    timeout = tool.timeout if tool.timeout is not None else default_timeout
    try:
        work: asyncio.Future[Any]
        if tool.is_async:
            work = asyncio.ensure_future(tool.fn(**kwargs))
        else:
            work = asyncio.ensure_future(_in_worker(workers, functools.partial(tool.fn, **kwargs)))
        work.add_done_callback(_consume)
        try:
            done, _ = await asyncio.wait({work}, timeout=timeout)
        finally:
            if not work.done():
                work.cancel()
        if not done:
            assert timeout is not None
            return TimedOut(timeout)
        if work.cancelled():
            return _cancelled_from_within(tool.name)
        return Returned(work.result())
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return Raised(exc)


def awaited_in_place(call: ToolCall, default_timeout: float | None) -> bool:
    """Whether ``call``'s tool is awaited in the call's own task, with no second one.

    An async tool without a timeout needs nothing around it; a sync tool runs
    on a worker thread, and a timeout needs a task that can be abandoned.

    Args:
        call: A call the protocol accepted.
        default_timeout: Seconds for tools that set no ``timeout`` of their own.
    """
    tool = call.tool
    timeout = tool.timeout if tool.timeout is not None else default_timeout
    return tool.is_async and timeout is None


def cancelled_outcome(name: str) -> Raised:
    """The outcome of a ``CancelledError`` out of a tool awaited in place.

    Args:
        name: The tool's name.

    Raises:
        asyncio.CancelledError: The call's task is being cancelled (by the
            client, a closed connection or shutdown), not the tool itself.
    """
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    if cancelling is None or cancelling():
        raise asyncio.CancelledError
    return _cancelled_from_within(name)


async def _in_worker(workers: WorkerThreads, fn: Callable[[], Any]) -> Any:
    result = await workers.submit(fn)
    if inspect.isawaitable(result):
        # Old dispatch tables are full of ``lambda args: service.method(args)``:
        # a sync callable handing back a coroutine means that coroutine's result.
        result = await result
    return result


def _cancelled_from_within(name: str) -> Raised:
    # The tool cancelled itself; nothing here asked it to.
    return Raised(RuntimeError(f"tool {name!r} was cancelled from within"))
