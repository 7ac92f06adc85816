"""Temporary folders of uploads, kept in a folder the server owns and emptied at start-up.

An uploaded CSV is copied to disk before it is validated and ingested; a server killed meanwhile
(SIGKILL, out of memory, power) cannot remove that copy, and in the system's ``/tmp`` it would
stay, with a lab's whole table in it. So each upload gets a ``matforge-upload-*`` folder inside
:attr:`ServerSettings.upload_dir` and removes it when the request ends, and :func:`clean` removes
what a killed server left there when the next one starts.

A folder in use is locked (``flock`` on the folder itself) for as long as its request runs. The
kernel drops the lock of a process that dies, whatever pid a later process gets, so :func:`clean`
removes exactly the folders nobody holds: those of dead servers, never those of a live server
sharing the folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; a folder is then taken for in use while it exists
    fcntl = None

log = logging.getLogger("matforge.server.tempdirs")

PREFIX = "matforge-upload-"


def default_upload_dir(model_root: Path) -> Path:
    """``uploads/`` next to the server's model folder (the default ``upload_dir``)."""
    return Path(model_root).parent / "uploads"


@contextmanager
def upload_tempdir(upload_dir: Path) -> Iterator[Path]:
    """A new, locked, owner-only folder inside ``upload_dir``; removed when the block ends."""
    upload_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # locked under a name clean() does not look at, then renamed: no moment where another
    # server's clean() could see it unlocked (the lock belongs to the folder, not its name)
    new = Path(tempfile.mkdtemp(prefix=f".new-{PREFIX}", dir=upload_dir))
    path = new
    fd = os.open(new, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        path = new.with_name(new.name.removeprefix(".new-"))
        new.rename(path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)  # releases the lock


def clean(upload_dir: Path) -> int:
    """Remove the upload folders in ``upload_dir`` that no live process holds (left by a
    server that was killed); returns how many. Other files in ``upload_dir`` are left alone."""
    if not upload_dir.is_dir() or fcntl is None:
        return 0
    n = 0
    # a ".new-" folder is empty, and unlocked for a moment after it is made: only old ones
    stale = [p for p in upload_dir.glob(f".new-{PREFIX}*") if _age_s(p) > 60]
    for path in [*upload_dir.glob(f"{PREFIX}*"), *stale]:
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: an upload of a live server
            os.close(fd)
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)
        n += 1
    if n:
        log.info("removed %d upload folder(s) left by a server that was killed", n)
    return n


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.lstat().st_mtime
    except OSError:
        return 0.0
