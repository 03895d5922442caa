"""The parts of the notes a lecturer can leave out (``derive --no-<part>``).

A module of its own so that the command line can list them without loading the
renderer (jinja2, the figures) for commands that write no notes.
"""
PARTS = ("figure", "matrix", "concrete", "example", "verification")
