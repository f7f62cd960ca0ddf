"""Files written whole or not at all: a reader, a rerun or a crash never meets a partial file under its name, and a
place that cannot take a file (a full disk, a read-only folder) is reported in one line naming it.

Every file the project writes goes through ``write_atomically`` (or ``copy_atomically``): the bytes go to a hidden
temporary file first, are flushed to disk, and the temporary file is renamed over the target (``os.replace``,
atomic on POSIX and Windows). Temporary names carry the writer's process id, so concurrent writers never share one
and the next write in that folder removes those a killed process left behind (``remove_stale_partials``).
"""

import errno
import os
import re
import shutil
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional, Union

from pixelsplat_ns.core.errors import InputError

CANNOT_WRITE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EACCES, errno.EPERM}
"""Errors that mean the place cannot take the file (full disk or quota, read-only, no permission)."""

FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}

PARTIAL_NAME = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{12}\.partial$")
"""``.<target name>.<writer's pid>-<random>.partial``: a temporary file of ``write_atomically``."""


class CannotWrite(InputError):
    """A place that cannot take a file: a full disk, a read-only file system, no permission. Nothing was written."""


def human_size(size: float) -> str:
    """A size for people: kB below a megabyte, MB above."""
    return f"{size / 1e3:,.0f} kB" if size < 1e6 else f"{size / 1e6:,.1f} MB"


def partial_path(path: Path, folder: Optional[Path] = None) -> Path:
    """The temporary file for ``path``: in ``folder`` (default: beside ``path``), hidden, unique to this writer."""
    folder = path.parent if folder is None else folder
    return folder / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.partial"


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer is no longer running (killed while writing: SIGKILL,
    a power cut); returns them. Files of running writers, and every other file, are left alone."""
    import psutil  # here: only writers need it

    removed = []
    for candidate in Path(folder).glob(".*.partial"):
        match = PARTIAL_NAME.match(candidate.name)
        if match and not psutil.pid_exists(int(match["pid"])):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def cannot_write_reason(error: BaseException) -> Optional[OSError]:
    """The ``OSError`` behind ``error`` that says the place cannot take the file, else None. torch's zip writer
    reports a full disk as ``RuntimeError("[enforce fail ...] unexpected pos ...")``, the ``OSError`` it met as
    its context."""
    seen: Optional[BaseException] = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in CANNOT_WRITE:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def cannot_write(
    path: Optional[Path], reason: OSError, size_hint: Optional[int] = None, atomic: bool = True
) -> CannotWrite:
    """The one-line error for ``path`` (None: a file whose name the error does not give): what stops it and what
    to do (``atomic``: and that nothing was written, as ``write_atomically`` guarantees)."""
    outcome = " (nothing was written)" if atomic else ""
    what = f"cannot write {path}" if path is not None else "a file could not be written"
    if reason.errno in FULL:
        needed = f"it needs about {human_size(size_hint)}; " if size_hint else ""
        free = f"{human_size(shutil.disk_usage(existing_folder(path)).free)} free there" if path is not None else ""
        figures = f" ({needed}{free})" if needed or free else ""
        return CannotWrite(f"{what}: the disk is full{figures}: free some space or write elsewhere{outcome}")
    return CannotWrite(f"{what}: {reason.strerror or reason}: choose a folder you can write to{outcome}")


def as_cannot_write(error: BaseException) -> Optional[CannotWrite]:
    """The one-line ``CannotWrite`` for an error from someone else's write (nerfstudio's, a library's) whose cause
    is a place that cannot take a file, naming the file where the error does; None for any other error."""
    reason = cannot_write_reason(error)
    if reason is None:
        return None
    return cannot_write(Path(reason.filename) if reason.filename else None, reason, atomic=False)


def existing_folder(path: Path) -> Path:
    """The nearest folder at or above ``path`` that exists (where a new file or folder would be made)."""
    for folder in [Path(path), *Path(path).parents]:
        if folder.is_dir():
            return folder
    return Path.cwd()


def check_writable(path: Union[str, Path], size_hint: Optional[int] = None) -> None:
    """Before any work: refuse a ``path`` beneath a file, or whose nearest existing folder is read-only or not ours
    to write, or whose disk has less than ``size_hint`` bytes free. Raises ``CannotWrite``."""
    path = Path(path)
    for above in path.parents:
        if above.exists() and not above.is_dir():
            raise CannotWrite(f"cannot write {path}: {above} is a file, not a folder: choose another path")
    folder = existing_folder(path.parent)
    if not os.access(folder, os.W_OK | os.X_OK):  # also False on a read-only file system, for root too
        code = errno.EROFS if _read_only_mount(folder) else errno.EACCES
        raise cannot_write(path, OSError(code, f"{folder} is {'read-only' if code == errno.EROFS else 'not writable'}"))
    usage = shutil.disk_usage(folder)
    # A virtual file system (/proc, /sys) reports no size at all: its writes fail on their own, saying why.
    if size_hint is not None and usage.total > 0 and usage.free < size_hint:
        raise cannot_write(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), size_hint)


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs on Windows
        return False


def write_atomically(
    path: Union[str, Path],
    write: Callable[[BinaryIO], Any],
    size_hint: Optional[int] = None,
    partial_folder: Optional[Path] = None,
) -> None:
    """Write ``path`` through ``write(file)``, whole or not at all.

    ``size_hint``: the bytes it will take, if known: a disk with less free space is refused before writing.
    ``partial_folder``: where the temporary file goes (default: beside ``path``; it must be on the same file
    system) when tools list ``path``'s folder and would trip over it.
    On any failure the temporary file is removed and ``path`` is left as it was. A place that cannot take the
    file (full disk or quota, read-only, no permission) raises ``CannotWrite`` naming ``path``; other errors
    propagate unchanged."""
    path = Path(path)
    check_writable(path, size_hint)
    partial = partial_path(path, partial_folder)
    remove_stale_partials(partial.parent)
    try:
        with open(partial, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        reason = cannot_write_reason(error)
        if reason is not None:
            raise cannot_write(path, reason, size_hint) from error
        raise


def write_bytes_atomically(path: Union[str, Path], data: bytes) -> None:
    """``Path.write_bytes``, whole or not at all (``write_atomically``)."""
    write_atomically(path, lambda file: file.write(data), size_hint=len(data))


def write_text_atomically(path: Union[str, Path], text: str) -> None:
    """``Path.write_text`` (UTF-8), whole or not at all (``write_atomically``)."""
    write_bytes_atomically(path, text.encode("utf-8"))


def copy_atomically(source: Union[str, Path], target: Union[str, Path]) -> None:
    """``shutil.copyfile``, whole or not at all (``write_atomically``)."""

    def copy(file: BinaryIO) -> None:
        with open(source, "rb") as original:
            shutil.copyfileobj(original, file)

    write_atomically(target, copy, size_hint=Path(source).stat().st_size)


def tensor_bytes(state: Any) -> int:
    """The bytes of the tensors in a nested dict/list/tuple (each storage once): about what ``torch.save`` of it
    takes on disk, for ``write_atomically``'s ``size_hint``."""
    import torch  # here: the module is also used by writers of plain files

    seen: dict[int, int] = {}

    def visit(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        elif isinstance(item, dict):
            for value in item.values():
                visit(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                visit(value)

    visit(state)
    return sum(seen.values())


@contextmanager
def undone_on_failure(folder: Union[str, Path]) -> Iterator[None]:
    """Write into ``folder`` all or nothing: when the block fails (any exception, Ctrl-C included), every file and
    folder made in it since the block began is removed again, and ``folder`` itself if the block made it; what was
    there before stays (files the block replaced keep their new, whole content). A rerun then meets the folder as
    it was, not "not empty; pass --force"."""
    folder = Path(folder)
    before = set(folder.rglob("*")) if folder.is_dir() else set()
    made_folder = not folder.exists()
    try:
        yield
    except BaseException:
        made = sorted(set(folder.rglob("*")) - before, key=lambda path: len(path.parts), reverse=True)
        for path in made + ([folder] if made_folder else []):
            with suppress(OSError):  # each file was written whole or not at all: a leftover is never partial
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink()
        raise
