"""The console commands installed with the package (``[project.scripts]`` in pyproject.toml), in nerfstudio's
style: tyro flags, ``--data`` for inputs, ``--output-dir`` / ``--output-path`` for what they write.

Each is a thin layer over library code: it parses, calls, reports, and turns the library's input errors into
one line ``error: ...`` with exit status 1, never a traceback. ``main(argv)`` takes the arguments (``None``:
the command line), so tests call them in-process.
"""

from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from pixelsplat_ns.core.atomic_files import as_cannot_write, check_writable
from pixelsplat_ns.core.errors import InputError


@contextmanager
def input_errors_exit(*errors: type[Exception]):
    """Bad input (an ``InputError``, or one of ``errors``) ends the command with ``error: <what is wrong>`` and
    status 1; so does a place that cannot take a file (a full disk, a read-only folder), named."""
    caught: tuple[type[Exception], ...] = (InputError, *errors)
    try:
        yield
    except caught as error:
        # A KeyError's text is the repr of its argument: show the message itself.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise SystemExit(f"error: {message}") from error
    except OSError as error:
        cannot_write = as_cannot_write(error)
        if cannot_write is None:
            raise
        raise SystemExit(f"error: {cannot_write}") from error


def check_output_file(path: Path, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse an output file that cannot be written as asked, before any work: a folder in its place, a file in
    place of one of its folders, an existing file without ``--force``, or one of the command's ``inputs``: raises
    ``FileExistsError`` saying which. A folder that cannot be written (read-only, not ours) raises ``CannotWrite``."""
    path = Path(path)
    if path.is_dir():
        raise FileExistsError(f"{path} is a folder: give the path of the file to write, e.g. {path / 'out.pt'}")
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise FileExistsError(f"{folder} is a file, so {path} cannot be written beneath it")
            break
    if any(path.resolve() == Path(source).resolve() for source in inputs):
        raise FileExistsError("the output must be a different file from the input")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it")
    check_writable(path)
