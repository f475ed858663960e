"""The pure protocol cores: JSON-RPC 2.0 and MCP without any I/O.

``server.ServerProtocol`` turns received text into replies and calls to run;
``client.ClientProtocol`` turns calls into requests and replies into results.
``outcomes`` says how a call ended, ``results`` shapes a tool's outcome into a
``tools/call`` result, ``versions`` knows the MCP revisions. Nothing here
imports ``asyncio``, ``websockets`` or ``h11``; the transports drive these
cores. Internal: the public API is ``iccm_network.__all__``.
"""

__all__: list[str] = []
