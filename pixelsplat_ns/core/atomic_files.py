"""Files written whole or not at all: a reader, a rerun or a crash never meets a partial file under its name."""

import errno
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Union

from pixelsplat_ns.core.errors import InputError

CANNOT_WRITE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EACCES, errno.EPERM}
"""Errors that mean the place cannot take the file (full disk or quota, read-only, no permission)."""


def write_atomically(path: Union[str, Path], write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write(file)``: into a new hidden file beside it (same folder, so the rename
    cannot cross file systems; a unique name, so concurrent writers cannot collide), flushed to disk, then
    renamed over ``path`` (``os.replace``, atomic on POSIX and Windows). On any failure the temporary file is
    removed and ``path`` is left as it was; a folder that cannot take the file raises ``InputError`` naming it.
    """
    path = Path(path)
    partial = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.partial"
    try:
        with open(partial, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        if error.errno in CANNOT_WRITE:
            raise InputError(f"cannot write {path}: {error.strerror} (nothing was written there)") from error
        raise
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
