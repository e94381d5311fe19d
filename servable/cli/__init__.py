"""The `servable` command line: one typer app, sub-apps per concern, one error policy.

User mistakes (ServableError, missing or existing files) print one line on stderr and exit
with code 2; there is no traceback for them. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import sys

import typer

from servable.cli import bundle as bundle_cli
from servable.cli import data as data_cli
from servable.cli import deploy as deploy_cli
from servable.cli import explain as explain_cli
from servable.cli import inference as inference_cli
from servable.cli import models as models_cli
from servable.cli import publish as publish_cli
from servable.cli import remote as remote_cli
from servable.cli import study as study_cli
from servable.cli.common import USER_ERRORS
from servable.cli.demo import demo, selftest

app = typer.Typer(
    name="servable",
    help="FAIR, deployable jet-tagger servables with an explainability bench.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cli.app, name="data")
app.add_typer(bundle_cli.app, name="bundle")
app.command()(bundle_cli.pull)
app.add_typer(bundle_cli.cache_app, name="cache")
app.command()(models_cli.train)
app.command()(models_cli.evaluate)
app.command()(inference_cli.predict)
bundle_cli.app.command("export")(inference_cli.export)
bundle_cli.app.command("import-onnx")(deploy_cli.import_onnx)
app.add_typer(deploy_cli.export_app, name="export")
app.add_typer(inference_cli.bench_app, name="bench")
app.command()(explain_cli.explain)
app.command()(study_cli.ablate)
app.command()(study_cli.reproduce)
app.command("part-transparency")(study_cli.part_transparency)
# --bundles A B C: the bundles after the first come as extra arguments (click options take
# one value each)
app.command("xai-benchmark", context_settings={"allow_extra_args": True})(
    study_cli.xai_benchmark)
app.command()(demo)
app.command()(selftest)
app.add_typer(remote_cli.app, name="remote")
app.add_typer(publish_cli.app, name="publish")
app.command()(publish_cli.cite)
app.command("fair-report")(publish_cli.fair_report)
app.add_typer(publish_cli.metadata_app, name="metadata")

def main(argv: list[str] | None = None) -> int:
    """Run the `servable` command line on `argv` (None: sys.argv) and return its exit code:
    0 on success, 2 for a user mistake or a usage error (one line on stderr, no traceback),
    1 when aborted; anything else propagates."""
    try:
        code = app(args=argv, standalone_mode=False)  # click returns an Exit's code here
    except USER_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except Exception as exc:
        # usage errors of typer's (vendored) click (a missing option, a value out of range):
        # one line too, with where to find the command's usage; they carry exit 2
        if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
            message = "; ".join(s.strip() for s in exc.format_message().splitlines() if s.strip())
            ctx = getattr(exc, "ctx", None)
            usage = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            if message:  # empty when the command's help was printed instead
                typer.echo(f"error: {message}{usage}", err=True)
            return exc.exit_code
        raise
    return code if isinstance(code, int) else 0


def entry() -> None:
    """The `servable` console script: `main` on sys.argv, exiting with its code."""
    sys.exit(main())
