"""Typed functions into compiled tools: the route table and what builds it.

``docstrings`` reads descriptions, ``schema`` turns type hints into JSON
Schema, ``validation`` checks arguments against it, ``convert`` turns
validated JSON into the declared Python types and results back into JSON,
and ``routes`` holds the frozen, compiled ``Tool`` entries. Pure, no I/O.
Internal: the public API is ``iccm_network.__all__``.
"""

__all__: list[str] = []
