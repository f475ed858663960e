"""``python -m iccm_network``: the ``iccm-network`` command."""

from __future__ import annotations

from iccm_network.cli.main import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
