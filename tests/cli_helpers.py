"""Run the real console entry point in a subprocess, as a user would."""

import subprocess
import sys


def run_cli(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "servable", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def assert_user_error(result, *fragments):
    """Exit 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in err and "Traceback" not in result.stdout
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def source_copy(dest):
    """A copy of what `pip install` builds from (the package, pyproject, README, licence),
    so that installing it writes nothing next to the repository's sources."""
    import shutil
    from pathlib import Path

    root, dest = Path(__file__).resolve().parents[1], Path(dest)
    shutil.copytree(root / "servable", dest / "servable",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(root / name, dest / name)
    return dest
