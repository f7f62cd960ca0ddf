"""``InputError``: the one base of every error that means "what you gave cannot be used".

Its message says what is wrong and how to fix it. Library callers catch it like any ``ValueError``; the
``pixelsplat-*`` commands print it as one line, and the ``ns-*`` commands print it without a traceback
(``nerfstudio_compat.error_reporting``, installed when a pixelsplat run is set up).
"""


class InputError(ValueError):
    """Input the project cannot use; the message says what is wrong and how to fix it."""


class OutOfMemory(InputError):
    """A step that does not fit in the machine's memory; the message says what would fit."""
