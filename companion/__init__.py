"""The composition root of CTI Companion: configuration, the daemon, its subscriber pipeline, the CLI, the demo.

The only package that imports all the others (``docs/architecture.md``); nothing imports it.
"""
