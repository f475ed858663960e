"""``GodotHandler``: capture log records for Godot without ever slowing a request.

``emit()`` only captures what cannot wait (the message, level, time, logger
name, ``extra=`` fields, exception text) in a tuple and appends it to a
bounded in-memory queue. It never blocks and never does I/O, and it is safe
to call from worker threads (sync tools log from there). When the queue is
full the oldest entry is dropped and counted. Turning a capture into an
entry (time formatting, JSON) happens in the shipper
(``iccm_network.godot.shipper``), off the request path. See
``iccm_network.godot`` for how the two fit together and where feedback is cut.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Any, Final

from iccm_network.logs import in_shipper_connection

__all__ = ["LOGGER_LOG", "GodotHandler", "godot_level"]

LOGGER_LOG: Final = "logger_log"
"""The Godot tool every entry is sent to."""

_OWN_LOGGERS: Final = "iccm_network.godot"

_MAX_TEXT: Final = 4096
"""Characters kept of a message or a field, so that entries stay small."""

_MAX_TRACEBACK: Final = 8192

_STANDARD_ATTRIBUTES: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
"""Attributes every record has; anything else came from ``extra=``."""

_Captured = tuple[float, int, str, str, "dict[str, Any] | None", "str | None"]
"""What ``emit()`` keeps of a record: created, levelno, logger name, message,
``extra=`` fields (with exception text), trace id."""

_time_cache: tuple[int, str] = (-1, "")


def _iso_time(created: float) -> str:
    """``created`` as UTC ISO 8601 with milliseconds and ``Z``.

    Entries come in bursts within the same second, so the part up to the
    seconds is kept from the previous call (a tuple swapped whole, so that
    threads racing here at worst compute it twice).
    """
    global _time_cache
    seconds = int(created)
    cached_seconds, prefix = _time_cache
    if seconds != cached_seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _time_cache = (seconds, prefix)
    return f"{prefix}.{int((created - seconds) * 1000):03d}Z"


def godot_level(levelno: int) -> str:
    """Godot's level name for a ``logging`` level number.

    Args:
        levelno: A record's ``levelno``.

    Returns:
        ``ERROR``, ``WARN``, ``INFO``, ``DEBUG`` or ``TRACE``.
    """
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
        return "INFO"
    if levelno >= logging.DEBUG:
        return "DEBUG"
    return "TRACE"


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more]"


def _plain(value: Any) -> Any:
    """A JSON-able stand-in for an ``extra=`` value, cheap to compute."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _clip(value)
    return _clip(repr(value))


class GodotHandler(logging.Handler):
    """Queue log records as Godot ``logger_log`` entries; never blocks.

    Args:
        component: The ``component`` of every entry (the app's name).
        capacity: Entries kept while Godot is slow or away; beyond that the
            oldest are dropped and counted.
        level: The least severe level queued.
        ignore_tools: Tools whose per-call records are never queued.
    """

    def __init__(
        self,
        component: str,
        *,
        capacity: int = 1000,
        level: int = logging.INFO,
        ignore_tools: Collection[str] = (LOGGER_LOG,),
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        super().__init__(level)
        self.component = component
        self.capacity = capacity
        self.ignore_tools = frozenset(ignore_tools)
        self.queued = 0
        """Entries queued since the handler was made."""
        self._entries: deque[_Captured] = deque(maxlen=capacity)
        self._dropped = 0
        self._wakeup: Callable[[], None] | None = None
        self._wake_at = 0

    def __repr__(self) -> str:
        return f"<GodotHandler {self.component!r} {len(self._entries)}/{self.capacity}>"

    # -- producer side: any thread, under the handler's lock ------------------

    def filter(self, record: logging.LogRecord) -> bool:
        """Leave out the records that must not reach Godot, then apply filters.

        Args:
            record: The record being handled.
        """
        name = record.name
        if name == _OWN_LOGGERS or name.startswith(_OWN_LOGGERS + "."):
            return False
        if in_shipper_connection():
            return False
        fields = record.__dict__
        if fields.get("log_shipper"):
            return False
        tool = fields.get("tool")
        if tool is not None and (tool in self.ignore_tools or fields.get("outcome") == "ok"):
            return False
        return bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        """Append the record's capture to the queue, dropping the oldest if full.

        Args:
            record: The record to ship.
        """
        try:
            captured = self._capture(record)
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            entries = self._entries
            if len(entries) == self.capacity:
                self._dropped += 1
            entries.append(captured)
            self.queued += 1
            size = len(entries)
            wakeup = self._wakeup
        if wakeup is not None and (size == 1 or size == self._wake_at):
            wakeup()

    def _capture(self, record: logging.LogRecord) -> _Captured:
        """What must be taken from ``record`` now; the rest waits for the shipper.

        The message is rendered now because its arguments may change later,
        ``extra=`` values are reduced to plain values now for the same reason,
        and an exception is formatted now so that its frames are not kept
        alive in the queue. Clipping here keeps the queue's memory bounded.
        """
        fields = record.__dict__
        extras: dict[str, Any] | None = None
        keys = fields.keys() - _STANDARD_ATTRIBUTES
        if keys:
            extras = {
                key: _plain(fields[key])
                for key in keys
                if key != "trace_id" and not key.startswith("_")
            }
        exc_info = record.exc_info
        if exc_info is not None and exc_info[1] is not None:
            # An earlier handler may have formatted it already.
            text = record.exc_text or logging.Formatter().formatException(exc_info)
            extras = extras or {}
            extras["exception"] = _clip(f"{type(exc_info[1]).__name__}: {exc_info[1]}")
            extras["traceback"] = _clip(text, _MAX_TRACEBACK)
        trace = fields.get("trace_id")
        if trace is None:
            trace = fields.get("correlation_id")
            if trace is None:
                trace = fields.get("request_id")
        message = record.getMessage()
        return (
            record.created,
            record.levelno,
            record.name,
            message if len(message) <= _MAX_TEXT else _clip(message),
            extras,
            None if trace is None else _clip(str(trace), 256),
        )

    def _entry(self, captured: _Captured) -> dict[str, Any]:
        created, levelno, name, message, extras, trace = captured
        data: dict[str, Any] = {"logger": name, "time": _iso_time(created)}
        if extras:
            data.update(extras)
        entry: dict[str, Any] = {
            "component": self.component,
            "level": godot_level(levelno),
            "message": message,
            "data": data,
        }
        if trace is not None:
            entry["trace_id"] = trace
        return entry

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        """The ``logger_log`` arguments for ``record``.

        ``data`` holds the logger name, the time, the record's ``extra=``
        fields and, for an exception, its type and traceback.

        Args:
            record: A log record.
        """
        return self._entry(self._capture(record))

    # -- consumer side: the shipper --------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, limit: int) -> list[dict[str, Any]]:
        """Remove and return up to ``limit`` entries, oldest first.

        Entries are built here, in the caller (the shipper), outside the lock.

        Args:
            limit: The most entries to take.
        """
        with self.lock:  # type: ignore[union-attr]
            entries = self._entries
            taken = [entries.popleft() for _ in range(min(limit, len(entries)))]
        return [self._entry(captured) for captured in taken]

    def take_dropped(self) -> int:
        """The number of entries dropped since the last call, and reset it."""
        with self.lock:  # type: ignore[union-attr]
            dropped, self._dropped = self._dropped, 0
        return dropped

    def clear(self) -> int:
        """Empty the queue; returns how many entries it held."""
        with self.lock:  # type: ignore[union-attr]
            count = len(self._entries)
            self._entries.clear()
        return count

    def set_wakeup(self, wakeup: Callable[[], None] | None, *, at: int = 0) -> None:
        """Call ``wakeup()`` when an entry lands in an empty queue, or makes it ``at`` long.

        It runs in whichever thread logged, so it must be quick, thread-safe
        and must not log.

        Args:
            wakeup: The callback, or ``None`` to stop calling it.
            at: A queue length that calls ``wakeup()`` too (a full window,
                for a shipper letting entries gather); 0 for none.
        """
        with self.lock:  # type: ignore[union-attr]
            self._wakeup = wakeup
            self._wake_at = at
