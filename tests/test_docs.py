"""The documentation site builds with `mkdocs build --strict`, its tutorials executed.

One test for the whole build, so its time is visible in `pytest --durations`: a broken link
or anchor between pages, an API reference to an object that does not exist, a malformed
docstring, a missing snippet or a tutorial whose cell raises (its closing asserts included)
is a warning or an error, and --strict fails on either. The site goes to a temporary
folder; the build writes nothing into the checkout (the notebook cache is off).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import griffe

ROOT = Path(__file__).resolve().parents[1]


def _tracked_and_untracked() -> set[str]:
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
                       cwd=ROOT, capture_output=True, text=True)
    return set(r.stdout.splitlines()) if r.returncode == 0 else set()


def test_the_site_builds_strictly_with_every_tutorial_executed(tmp_path):
    before = _tracked_and_untracked()
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                        str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                       env=env, timeout=900)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-6000:]
    assert not re.search(r"^WARNING", log, re.M), log[-6000:]
    site = tmp_path / "site"
    for page in ("index.html", "getting-started.html", "api/servable.html",
                 "tutorials/01_fair_servable.html", "tutorials/02_remote.html",
                 "tutorials/03_explain_in.html", "tutorials/04_compare_jetclass.html",
                 "tutorials/05_hpc.html", "fair.html"):
        assert (site / page).is_file(), page
    # the tutorials ran: their last cell prints this only after its asserts passed
    for name in ("01_fair_servable", "02_remote", "03_explain_in", "04_compare_jetclass",
                 "05_hpc"):
        assert "all checks passed in" in (site / "tutorials" / f"{name}.html").read_text()
    assert "def load" not in (site / "api" / "servable.html").read_text()  # no source shown
    assert "servable.load" in (site / "api" / "servable.html").read_text()
    # nothing new in the checkout but ignored caches (__pycache__)
    new = {line for line in _tracked_and_untracked() - before if "__pycache__" not in line}
    assert new == set(), new


def test_every_object_in_the_api_reference_has_a_docstring():
    """Each `::: object` of docs/api/ and its public members (those it does not inherit a
    documented definition for) carry a docstring: mkdocstrings would silently show nothing."""
    package = griffe.load("servable", search_paths=[str(ROOT)], docstring_parser="numpy")
    refs = [ref for page in sorted((ROOT / "docs" / "api").glob("*.md"))
            for ref in re.findall(r"^::: (\S+)", page.read_text(), re.M)]
    assert len(refs) > 40
    missing = []
    for ref in refs:
        obj = package[ref.removeprefix("servable.")]
        obj = obj.final_target if obj.is_alias else obj
        if not obj.docstring:
            missing.append(ref)
        if not obj.is_class:
            continue
        for name, member in obj.members.items():
            if name.startswith("_") or member.is_alias or not (
                    member.is_function or member.is_class or "property" in member.labels):
                continue
            inherited = any(name in base.members and base.members[name].docstring
                            for base in obj.mro())
            if not member.docstring and not inherited:
                missing.append(f"{ref}.{name}")
    assert missing == [], missing
