"""Files the product reads and writes at the paths users give.

Inputs: only regular files are read (a named pipe or a device would block or never end);
`open_regular` opens without blocking and checks what it opened.

Outputs: every file is written by `atomic_output`: refused inside a bundle (a directory
holding `servable.yaml`, itself or any of its parents: bundles are only read) and over an
input; refused over an existing file unless `force`; written to a temporary file created
exclusively, with a random name, in the destination directory (never a predictable name that
a planted symlink could redirect, never reopened by name), flushed to disk, then renamed
over the destination (which replaces a symlink there instead of following it).

JSON: `json_text` writes strict JSON (RFC 8259): a number that is infinite or undefined
(NaN) is written as `null`. The metrics say what their null means (for example a background
rejection is null when no background jet passes the cut: infinite rejection).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from servable.errors import ServableError

BUNDLE_MANIFEST = "servable.yaml"  # what makes a directory a bundle

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


class OutputError(ServableError):
    """An output that must not be written where it was asked to go."""


def _not_regular(path, mode: int) -> ServableError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return ServableError(f"{path}: {kind}, not a regular file; give a file")


def _loop(path) -> ServableError:
    return ServableError(f"{path}: a symbolic link loop (a link that leads back to itself); "
                         "point it at a real file or give another path")


def _unreadable(path, exc: OSError) -> ServableError:
    if exc.errno == errno.ELOOP:
        return _loop(path)
    return ServableError(f"{path}: cannot be read ({exc.strerror})")


def regular_file(path) -> Path:
    """`path` when it names a regular file (a symlink to one is followed); else one clear
    ServableError: missing, a directory, a named pipe, a device."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ServableError(f"{path}: no such file") from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if not stat.S_ISREG(mode):
        raise _not_regular(path, mode)
    return path


def resolved(path) -> Path:
    """`path` made absolute with every symlink followed (`Path.resolve`), or one clear
    ServableError when a symlink in it leads back to itself (Python 3.11 raises
    RuntimeError there, later versions OSError)."""
    path = Path(path)
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        raise _loop(path) from None


def open_regular(path) -> BinaryIO:
    """Open a regular file for binary reading; never blocks (a named pipe is refused, not
    waited on), and what was opened is what is checked."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ServableError(f"{path}: no such file") from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _not_regular(path, mode)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_text(path) -> str:
    """The text of a regular file (UTF-8)."""
    with open_regular(path) as f:
        return f.read().decode()


def sha256_file(path, block: int = 1 << 20) -> str:
    """The SHA-256 of a regular file, read in blocks."""
    h = hashlib.sha256()
    with open_regular(path) as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


# -- outputs -----------------------------------------------------------------------------

def _bundle_holding(directory: Path) -> Path | None:
    """The bundle that is `directory` or one of its parents, if any."""
    for d in (directory, *directory.parents):
        if (d / BUNDLE_MANIFEST).is_file():
            return d
    return None


def _refuse_inside_inputs(path: Path, target: Path, directory: Path,
                          inputs: Iterable) -> None:
    """`target` (the output, resolved) must not be in a bundle (`directory` is where it goes)
    nor be an input or inside an input directory."""
    bundle = _bundle_holding(directory)
    if bundle is not None:
        raise OutputError(f"{path}: inside the bundle {bundle}; a bundle is only read, "
                          "write outputs elsewhere")
    for given in inputs:
        source = resolved(given)
        if source == target or (path.exists() and resolved(path) == source):
            raise OutputError(f"{path}: an input of this command; the output would overwrite the "
                              "input, choose another name")
        if source.is_dir() and source in target.parents:
            raise OutputError(f"{path}: inside the input directory {given}; write outputs "
                              "elsewhere")


def check_output(path, *, force: bool = False, inputs: Iterable = ()) -> Path:
    """Refuse an output file inside a bundle or over an input, a directory in its place,
    or an existing file without `force`. The path's last part is not resolved: a symlink
    there is replaced, never followed."""
    path = Path(path)
    target = resolved(path.parent) / path.name
    _refuse_inside_inputs(path, target, target.parent, inputs)
    if path.is_dir() and not path.is_symlink():
        raise OutputError(f"{path}: a directory; give a file name")
    if os.path.lexists(path) and not force:
        raise FileExistsError(f"{path} exists; choose another name or pass --force")
    return path


def output_dir(path, *, inputs: Iterable = ()) -> Path:
    """Create an output directory (and its parents), refused inside a bundle or an input
    directory; the files in it are each written with `atomic_output`."""
    path = Path(path)
    target = resolved(path)
    _refuse_inside_inputs(path, target, target, inputs)
    if os.path.lexists(path) and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a directory; give a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def _file_mode() -> int:
    """What a newly created file's permissions would be (0666 less the umask)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_output(path, *, force: bool = False, inputs: Iterable = ()) -> Iterator[BinaryIO]:
    """Yield a binary file to write `path` through (h5py, zipfile and matplotlib take one);
    on success it becomes `path` at once, on failure nothing is left behind."""
    path = check_output(path, force=force, inputs=inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp: O_CREAT | O_EXCL | O_NOFOLLOW with a random name: nothing planted is followed
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    f = os.fdopen(fd, "w+b")
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        if hasattr(os, "fchmod"):  # mkstemp's 0600 becomes what a new file would get
            os.fchmod(f.fileno(), _file_mode())
        ours, now = os.fstat(f.fileno()), os.lstat(tmp)
        if (ours.st_dev, ours.st_ino) != (now.st_dev, now.st_ino):
            raise OutputError(f"{path}: the temporary file {tmp} was replaced while it was "
                              "written; the output directory is not safe to write in")
        f.close()
        if force:
            os.replace(tmp, path)
        else:
            _rename_to_new(tmp, path)
        _sync_directory(path.parent)
    finally:
        f.close()
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _rename_to_new(tmp: str, path: Path) -> None:
    """Rename only if `path` still does not exist: a file another writer made meanwhile is
    kept (a hard link fails on an existing name; without hard links, checked just before)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; choose another name or pass --force") from None
    except OSError:  # a file system without hard links
        if os.path.lexists(path):
            raise FileExistsError(f"{path} exists; choose another name or pass --force") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path, data: bytes, *, force: bool = False, inputs: Iterable = ()) -> Path:
    """Write `data` to `path` atomically (`atomic_output`): never over an existing file without
    `force`, never inside a bundle or over one of `inputs`; returns the path."""
    with atomic_output(path, force=force, inputs=inputs) as f:
        f.write(data)
    return Path(path)


def _finite(value):
    """`value` with every infinite or NaN float replaced by None, in nested dicts and lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_text(obj, *, indent: int | None = 2, default=None) -> str:
    """Strict JSON: infinite and NaN numbers become null (never `Infinity` or `NaN`)."""
    return json.dumps(_finite(obj), indent=indent, allow_nan=False, default=default)


def write_json(path, obj, *, force: bool = False, inputs: Iterable = ()) -> Path:
    """Write `obj` to `path` as strict JSON (`json_text`: NaN and infinities become null) with
    a final newline, atomically and under the rules of `write_bytes`; returns the path."""
    return write_bytes(path, (json_text(obj) + "\n").encode(), force=force, inputs=inputs)
