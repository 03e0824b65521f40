"""Atomic file and folder writes: a reader (or a process killed mid-write) sees the old content or
the new one, never a half-written file.

Every file the package writes goes through here: the content goes to a temporary file in the same
folder, which then replaces the target with :func:`os.replace` (atomic on POSIX and Windows within
one file system). Folders (an anchor set) are written as a new hidden folder beside the target and
renamed into place (:func:`replace_folder`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "check_new",
    "copy_file",
    "held",
    "new_folder_beside",
    "replace_folder",
    "sha256_file",
    "try_lock",
    "write_bytes",
    "write_text",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so tools that read the format from the
    name still work); when the block ends without an error, it replaces ``path``; on an error it is
    removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _mode_for(path, 0o666))  # mkstemp's 0600 would hide the file from other users
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: Path, default: int) -> int:
    """The permissions a replacement of ``path`` gets: those of the file it replaces, else what
    ``open`` (``default`` 0o666) or ``mkdir`` (0o777) would give under the process's umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return default & ~_umask()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dst`` byte for byte, atomically; returns ``dst``."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks (a checkpoint may take hundreds of MB)."""
    import hashlib

    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def new_folder_beside(target: str | os.PathLike) -> Path:
    """A new empty hidden folder in ``target``'s parent, to fill and then :func:`replace_folder`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    os.chmod(new, _mode_for(target, 0o777))  # mkdtemp's 0700 would hide the folder from other users
    return new


def replace_folder(new: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Move the finished folder ``new`` to ``target``. An existing ``target`` is first renamed aside
    and removed only once ``new`` is in place (if the move fails, it is put back), so at every
    moment one complete version exists."""
    new, target = Path(new), Path(target)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.rmdir(old)
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def check_new(path: str | os.PathLike, *, overwrite: bool, hint: str = "pass --overwrite to replace it") -> None:
    """Refuse, before any work, to replace ``path`` unless ``overwrite``: ``FileExistsError`` naming
    the path and ``hint`` (how to allow it)."""
    if not overwrite and Path(path).exists():
        raise FileExistsError(f"{path} exists; {hint}")


def try_lock(path: str | os.PathLike):
    """Take an exclusive, non-blocking lock on ``path`` (created if missing): the open file, which
    holds the lock until it is closed or the process ends, or ``None`` if another process holds it."""
    import fcntl

    f = Path(path).open("w")  # noqa: SIM115  (returned open: it holds the lock)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def held(path: str | os.PathLike) -> bool:
    """Whether another process holds the lock on ``path`` (tested without keeping it; a missing
    file is not held)."""
    import fcntl

    try:
        with Path(path).open("r") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:
        return False
    return False
