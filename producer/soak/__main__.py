"""``python -m producer.soak --tasks 10000``: run the soak; ``--help`` lists the flags.

``scripts/soak.sh`` sets up the virtualenv and runs this; the flags are in ``producer/soak/cli.py`` and the
checks in ``producer/soak/checks.py``.
"""

from producer.soak.cli import main

main()
