"""The only modules that move bytes: server and client transports.

``websocket`` serves ``ServerProtocol`` over WebSocket connections and hands
every other request on the port to ``http`` (Streamable HTTP); both drive
the protocol through ``serving`` (a ``Channel`` each, one ``CallRunner``);
``calls`` runs tool calls (tasks, worker threads, timeouts); ``memory`` is an
app's server side with no socket; ``client`` holds the client transports
(WebSocket, in memory) and ``http_client`` the Streamable HTTP one;
``connect`` dials and ``handshake`` initializes;
``failures`` words a connection failure; ``lifecycle`` starts, drains and
stops a server. Internal: the public API is ``iccm_network.__all__``.
"""

__all__: list[str] = []
