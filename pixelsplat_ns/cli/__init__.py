"""The console commands installed with the package (``[project.scripts]`` in pyproject.toml), in nerfstudio's
style: tyro flags, ``--data`` for inputs, ``--output-dir`` / ``--output-path`` for what they write.

Each is a thin layer over library code: it parses, calls, reports, and turns the library's input errors into
one line ``error: ...`` with exit status 1, never a traceback. ``main(argv)`` takes the arguments (``None``:
the command line), so tests call them in-process.
"""

from contextlib import contextmanager


@contextmanager
def input_errors_exit(*errors: type[Exception]):
    """Bad input (one of ``errors``) ends the command with ``error: <what is wrong>`` and status 1."""
    try:
        yield
    except errors as error:
        # A KeyError's text is the repr of its argument: show the message itself.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise SystemExit(f"error: {message}") from error
