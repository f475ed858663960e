"""Benchmarks for iccm-network: a load generator, baseline servers and a comparison.

Run ``python -m benchmarks compare`` from the repository root; see
``benchmarks/README.md`` for the cases, the targets and the latest figures.
Every server runs as a subprocess bound to 127.0.0.1, so that its CPU time
and memory can be read from ``/proc`` apart from the load generator's.
"""

__all__: list[str] = []
