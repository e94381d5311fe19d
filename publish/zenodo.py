#!/usr/bin/env python3
"""`servable publish zenodo` as a script: python publish/zenodo.py BUNDLE [--sandbox] ..."""

import sys

from servable.cli import main

if __name__ == "__main__":
    sys.exit(main(["publish", "zenodo", *sys.argv[1:]]))
