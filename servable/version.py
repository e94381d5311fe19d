"""The package version: one place, importing nothing (the bundle, metadata and worker read it)."""

__version__ = "0.1.0"
