"""Make the repository importable even without `pip install -e .` (e.g. a bare `pytest` run)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
