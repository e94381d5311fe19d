"""What every command shares: the user-error policy (one line on stderr, exit code 2)."""

from __future__ import annotations

import typer

from servable.errors import ServableError

USER_ERRORS = (ServableError, FileExistsError, FileNotFoundError, IsADirectoryError)


def fail(message: str) -> None:
    """End the command with one line on stderr and exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def target_option(target: str, class_names) -> int:
    """`--target` (a class index or name) through the one parser,
    `servable.data.jets.class_index`, its error worded as the flag."""
    from servable.data.jets import InvalidJetsError, class_index

    try:
        return class_index(target, class_names)
    except InvalidJetsError as exc:
        fail(f"--{exc}")
