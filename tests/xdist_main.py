"""The main module an xdist worker names as its own (tests/conftest.py): nothing runs here.

A worker's ``__main__`` is code execnet ran, with neither ``__spec__`` nor ``__file__``.
``pyspark.sql.connect`` (which Great Expectations imports) takes such a process for a
doctest run and calls ``sys.exit(0)``; multiprocessing's spawn start method runs the
file named as ``__main__.__file__`` in each child. This empty module satisfies both.
"""
