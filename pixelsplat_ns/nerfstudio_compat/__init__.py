"""Every workaround for nerfstudio 1.1.5, grouped by what it touches and each named with the nerfstudio
behaviour it works around: trainer, checkpoints, dataparsers, lazy_targets, error_reporting, scene_batches,
unavailable (a method whose code does not import here).

nerfstudio is pinned (pyproject.toml); ``tests/test_nerfstudio_compat.py`` fails when the installed
version differs from ``PINNED_NERFSTUDIO``: then re-check each workaround against the new version (its
docstring says what nerfstudio does and where), drop those it made unnecessary, and update the pin.

Importing this package changes nothing: the process-wide hooks (torch's unpickling allow-list for
nerfstudio's checkpoints, the report of input errors) are installed by ``install_process_hooks``, which the
trainer and the pipelines call when a pixelsplat run is set up, never at import (nerfstudio imports every
plugin's entry points in every ``ns-*`` command, ``ns-train splatfacto`` included).
"""

PINNED_NERFSTUDIO = "1.1.5"


def install_process_hooks() -> None:
    """Install the process-wide hooks a pixelsplat run needs; idempotent and cheap.

    ``allow_numpy_scalars_in_checkpoints`` (so ``ns-viewer``, ``ns-eval``, ``ns-render``, ``ns-export`` and a
    resumed ``ns-train`` read nerfstudio's own checkpoints under torch >= 2.6) and
    ``report_input_errors_without_traceback`` and ``allow_pickling_lazy_targets`` (so ``ns-train`` can hand the
    config to the processes of ``--machine.num-devices N``)."""
    from pixelsplat_ns.nerfstudio_compat.checkpoints import allow_numpy_scalars_in_checkpoints
    from pixelsplat_ns.nerfstudio_compat.error_reporting import report_input_errors_without_traceback
    from pixelsplat_ns.nerfstudio_compat.lazy_targets import allow_pickling_lazy_targets

    allow_numpy_scalars_in_checkpoints()
    report_input_errors_without_traceback()
    allow_pickling_lazy_targets()
