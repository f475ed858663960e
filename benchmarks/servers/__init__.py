"""The servers under test, each meant to run as its own process.

- ``iccm_app``: the iccm-network ``App`` with the benchmark tools.
- ``raw``: ``websockets`` + ``json`` and nothing else, one task per call (the ceiling).
- ``raw --sequential``: the old hand-written style, one call at a time per connection.

Each prints ``PORT <n>`` once it accepts connections on 127.0.0.1 and exits
when its standard input closes or its ``--lifetime`` runs out.
"""

__all__: list[str] = []
