"""The size limit of the bundle cache (bundles retrieved by DOI): `$SERVABLE_CACHE_MAX`.

Each cache entry (`bundles/{site}-{id}/`, `servable.bundle.retrieve`) records its last use
in the modification time of its `entry.json`, renewed whenever a load finds it in the cache.
When a retrieval adds an entry and the entries together hold more than the limit, the least
recently used go until the rest fit. Never evicted: the entry the current load returns, and
any entry used in the last `IN_USE_SECONDS` (another process may be verifying or reading it
at this moment), so the cache may stay above the limit for that long.

The limit is bytes, or a number with a binary unit: `500M`, `2G`, `1.5T` (K, M, G, T are
powers of 1024; `KB`, `MiB` and the like are read the same). Unset: `DEFAULT_MAX` (20 GiB).
`0` keeps only the entry in use.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from servable.errors import ServableError

MAX_ENV = "SERVABLE_CACHE_MAX"
DEFAULT_MAX = 20 << 30
IN_USE_SECONDS = 60.0
ENTRY = "entry.json"
_UNITS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from a size such as `2G`, `500M`, `1.5T`, `123456` (binary units).

    Raises
    ------
    ServableError
        when `text` is not such a size (one line naming the variable and the forms).
    """
    m = _SIZE.fullmatch(text)
    if not m:
        raise ServableError(f"{MAX_ENV}={text!r:.40} is not a size; give bytes or a number "
                            "with K, M, G or T (powers of 1024), e.g. 500M or 2G")
    return int(float(m.group(1)) * (1 << _UNITS[m.group(2).upper()]))


def max_bytes() -> int:
    """The cache's limit: `$SERVABLE_CACHE_MAX`, else `DEFAULT_MAX`."""
    text = os.environ.get(MAX_ENV, "").strip()
    return parse_size(text) if text else DEFAULT_MAX


def mark_used(entry: Path) -> None:
    """Record that `entry` (a cache entry folder) was used now."""
    try:
        os.utime(entry / ENTRY)
    except OSError:  # a read-only cache still serves its bundles
        pass


def _size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed meanwhile
                pass
    return total


def _entries(bundles: Path) -> list[tuple[float, Path]]:
    """(last use, folder) of every complete entry (unpackings in progress start with '.')."""
    out = []
    for folder in bundles.iterdir() if bundles.is_dir() else ():
        try:
            if not folder.name.startswith(".") and folder.is_dir():
                out.append(((folder / ENTRY).stat().st_mtime, folder))
        except OSError:  # no entry.json: not an entry, not ours to remove
            continue
    return sorted(out)


def evict(bundles: Path, keep: Path, limit: int | None = None) -> list[Path]:
    """Remove the least recently used entries under `bundles` until the entries hold at most
    `limit` bytes (default `max_bytes()`); `keep` and entries used in the last
    `IN_USE_SECONDS` stay. Returns the folders removed, oldest first."""
    limit = max_bytes() if limit is None else limit
    entries = _entries(bundles)
    sizes = {folder: _size(folder) for _, folder in entries}
    total = sum(sizes.values())
    removed, now = [], time.time()
    for used, folder in entries:
        if total <= limit:
            break
        if folder == keep or now - used < IN_USE_SECONDS:
            continue
        # renamed first, so no reader meets a half-removed entry; the `.incoming-` prefix
        # makes `servable cache clear` remove what a killed process left
        doomed = folder.with_name(f".incoming-evicted-{folder.name}-{os.getpid()}")
        try:
            os.rename(folder, doomed)
        except OSError:  # removed or renamed by another process meanwhile
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        total -= sizes[folder]
        removed.append(folder)
    return removed
