"""Fuzzing: coverage-guided targets (atheris) and the helpers the property tests share."""
