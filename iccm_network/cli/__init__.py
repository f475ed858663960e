"""The ``iccm-network`` command: ``main`` parses and runs a subcommand.

``main`` holds ``serve``, ``tools`` and ``call``; ``doctor`` diagnoses a
connection step by step; ``catalog`` lists resources and prompts.
"""

from iccm_network.cli.main import main

__all__ = ["main"]
