"""Entry point: ``python -m benchmarks [--quick] [--rounds N] [--only a,b]``."""

from benchmarks.cli import main

raise SystemExit(main())
