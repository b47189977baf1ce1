"""``python -m producer``: the same CLI as the ``producer`` command."""

from producer.cli import main

main()
