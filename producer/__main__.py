"""``python -m producer``: the lab's CLI (``producer/cli.py``)."""

from producer.cli import main

main()
