"""``python -m observability.slo [--check] [--slos FILE] [--out DIR]``; see observability.slo.cli."""

from observability.slo.cli import main

raise SystemExit(main())
