"""`python -m servable` runs the command line."""

from servable.cli import entry

entry()
