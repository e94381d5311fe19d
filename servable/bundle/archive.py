"""Unpacking a bundle archive (a `.zip` retrieved by DOI) without letting anything out of its
folder: no absolute paths, no `..`, no links or special files, no member twice, at most
`MAX_MEMBERS` members and `MAX_BUNDLE_BYTES` unpacked, each member no larger than its header
says, and a damaged member (CRC, compression, encryption) refused with one line.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from servable.bundle.manifest import MANIFEST
from servable.errors import ServableError

MAX_BUNDLE_BYTES = 4 << 30  # download and unpacked size
MAX_MEMBERS = 10_000
# what zipfile raises on a damaged or unusual archive: a bad CRC or header (BadZipFile), a
# broken deflate stream (zlib.error), an encrypted member (RuntimeError), an unsupported
# compression (NotImplementedError), a truncated one (EOFError), odd offsets (ValueError),
# and a member that clashes with another on disk (OSError)
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError,
              ValueError, OSError)


class ArchiveError(ServableError):
    """An archive that is not a safe, intact bundle archive."""


def unpack(zip_path: Path, dest: Path, label: str | None = None) -> Path:
    """Unpack a bundle archive into the empty folder `dest`; returns the bundle folder.
    Refuses members outside their folder, links, special files and oversized content.
    `label` names the archive in errors (default: its file name)."""
    label = label or zip_path.name
    try:
        z = zipfile.ZipFile(zip_path)
    except ZIP_ERRORS:
        raise ArchiveError(f"{label}: not a zip archive") from None
    with z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(f"{label}: {len(infos)} members, more than "
                                 f"{MAX_MEMBERS}")
        total, tops, seen = 0, set(), set()
        for info in infos:
            name, mode = info.filename, info.external_attr >> 16
            parts = PurePosixPath(name).parts
            if parts in seen:  # written twice, or once as a file and once as a folder
                raise ArchiveError(f"{label}: member {name!r} appears twice; refusing "
                                     "the archive")
            seen.add(parts)
            if (name.startswith("/") or "\\" in name or not parts or ".." in parts
                    or ":" in parts[0]):
                raise ArchiveError(f"{label}: member {name!r} would land outside "
                                     "the bundle folder; refusing the archive")
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no unix mode
                raise ArchiveError(f"{label}: member {name!r} is a link or a special "
                                     "file; a bundle holds only regular files")
            total += info.file_size
            if total > MAX_BUNDLE_BYTES:
                raise ArchiveError(f"{label}: unpacks to more than "
                                     f"{MAX_BUNDLE_BYTES >> 20} MiB; refusing it")
            tops.add(parts[0])
        if len(tops) != 1 or not any(i.filename == f"{next(iter(tops))}/{MANIFEST}"
                                     for i in infos):
            raise ArchiveError(f"{label}: not a servable bundle archive (one folder "
                                 f"holding {MANIFEST} expected)")
        for info in infos:
            try:
                _extract(z, info, dest, label)
            except ZIP_ERRORS as exc:  # a damaged member: CRC, compression, header
                raise ArchiveError(f"{label}: member {info.filename!r} cannot be unpacked "
                                     f"({exc.__class__.__name__}); the archive is damaged"
                                     ) from None
    return dest / next(iter(tops))


def _extract(z: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, label: str) -> None:
    """One checked member of `z` into `dest`, never over anything nor through a link."""
    target = dest.joinpath(*PurePosixPath(info.filename).parts)
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out, z.open(info) as src:
        left = info.file_size
        while chunk := src.read(min(1 << 20, left + 1)):
            left -= len(chunk)
            if left < 0:
                raise ArchiveError(f"{label}: member {info.filename!r} is larger than its "
                                     "header says; refusing it")
            out.write(chunk)
