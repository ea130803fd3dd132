"""The one thing pyproject.toml cannot say: the optional C speed-up of the AMI framer.

``optional=True``: without a C compiler (or Python's headers) the build goes on without it and the framer runs
in pure Python, the same, only slower (``asterisk/_speedups.c`` explains why it exists).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("asterisk._speedups", ["asterisk/_speedups.c"], optional=True)])
