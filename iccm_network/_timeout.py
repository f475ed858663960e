"""``timeout(seconds)``: ``asyncio.timeout`` on Python 3.11+, ``async-timeout`` before.

For the test suite and the benchmarks (``async-timeout`` comes with the
``test`` extra on Python 3.10); the library itself does not need it.

Both raise ``TimeoutError`` when the time runs out: on 3.11+ that is the
builtin, which ``asyncio.TimeoutError`` aliases; on 3.10 ``async-timeout``
raises ``asyncio.TimeoutError``, so code that must run on both catches
``asyncio.TimeoutError``.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # pragma: no cover - exercised by the Python 3.10 run of .ci/run
    from async_timeout import timeout

__all__ = ["timeout"]
