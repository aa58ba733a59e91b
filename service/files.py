"""Crash-safe file writes: a reader sees the old file or the new one, never a torn one.

Everything PokeWatch must not lose half-way (the keys file, collected partitions, the jobs'
status, published answers) is written here: to a hidden temporary file in the target's
directory, flushed and fsynced, renamed over the target (`os.replace`, atomic on POSIX),
then the directory is fsynced so the rename itself survives a power cut. A write that
fails (a full disk, a kill) leaves at most the hidden temporary file, which readers skip
(pyarrow ignores names starting with '.') and the next write of that name tidies up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class WriteError(OSError):
    """A crash-safe write that failed (a full disk, a file size limit, an I/O error): the
    target is as it was, and nothing half-written is left."""

    def __init__(self, target: Path, cause: OSError) -> None:
        super().__init__(
            cause.errno, f"cannot write {target}: {cause.strerror or cause}; it is unchanged"
        )
        self.target = target


# What a plain open() would give under the usual umask 022 (a temporary file starts 0600):
# the service reads what the jobs write, possibly as another user.
DEFAULT_MODE = 0o644


def atomic_write(target: Path, data: bytes, mode: int = DEFAULT_MODE) -> None:
    """Replace `target` with `data` atomically, with permissions `mode`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temp.chmod(mode)
        temp.replace(target)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise WriteError(target, error) from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def create_exclusively(target: Path, data: bytes, mode: int = DEFAULT_MODE) -> bool:
    """Write `target` whole unless it exists (False: it did, and is left as it is). Two
    processes racing to make the same file never see a half-written one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temp.chmod(mode)
        try:
            os.link(temp, target)  # unlike a rename, fails when the target exists
        except FileExistsError:
            return False
    except OSError as error:
        raise WriteError(target, error) from error
    finally:
        temp.unlink(missing_ok=True)
    fsync_directory(target.parent)
    return True
