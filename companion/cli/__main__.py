"""``python -m companion.cli``: the ``cti`` command without the installed script (tests, benchmarks)."""

from companion.cli import main

main()
