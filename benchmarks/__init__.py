"""Side-by-side benchmarks: this project, PenguiFlow 2.2.5 and a raw asyncio floor.

Run ``python -m benchmarks`` from the repository root (see ``benchmarks/README.md``).
Not part of the test run; ``tests/benchmarks/test_quick.py`` runs the quick mode as a
smoke test so the workloads never rot.
"""

__all__: list[str] = []
