"""Run the soak: ``python bench/soak.py --tasks 10000`` (or ``python -m bench.soak``); ``--help`` lists the flags.

``scripts/soak.sh`` sets up the virtualenv and runs this; the flags and the checks are in ``bench/soak_cli.py``
and ``bench/soak_checks.py``.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: bench, tests, producer
    from bench.soak_cli import main

    main()
