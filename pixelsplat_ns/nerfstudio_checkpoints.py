"""Make nerfstudio's own ``step-*.ckpt`` files loadable by ``torch.load`` under torch >= 2.6.

nerfstudio 1.1.5 saves ``{"step", "pipeline", "optimizers", "schedulers", "scalers"}`` and reads it back
with a plain ``torch.load(path, map_location="cpu")`` (``eval_utils.eval_load_checkpoint``, used by
``ns-viewer``, ``ns-eval``, ``ns-render``, ``ns-export``; and ``Trainer._load_checkpoint`` on resume). Since
torch 2.6 that call means ``weights_only=True``, and nerfstudio's learning-rate schedulers make the file
unloadable: their lambdas (``ExponentialDecayScheduler``, ``CosineDecayScheduler``) return numpy float64
values, so ``_last_lr`` in the scheduler states and ``lr`` in the optimizer param groups are pickled as numpy
scalars. A numpy scalar pickles as ``numpy.core.multiarray.scalar(dtype, raw bytes)`` with its dtype rebuilt
by ``numpy.dtype(...)`` plus a ``BUILD`` on the dtype instance, and torch's safe unpickler refuses all three.

``allow_nerfstudio_checkpoints`` adds exactly those to torch's allow-list: the numpy scalar reconstructor,
``numpy.dtype`` and the float64 dtype's class. All three only turn a type code and bytes into plain data;
none can import or call anything else, so every other global (any class, any function) is still refused.
It is called when ``pixelsplat_ns`` is imported, which every ``ns-*`` command does through the plugin's
entry points, so nerfstudio's own loaders need no change.
"""

import numpy as np
import torch


def _numpy_scalar_reconstructor():
    """``scalar`` from numpy's multiarray module (``numpy._core`` from numpy 2, ``numpy.core`` before)."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2 without the numpy._core alias
        from numpy.core.multiarray import scalar
    return scalar


def nerfstudio_checkpoint_globals() -> list:
    """The allow-list entries, as ``torch.serialization.add_safe_globals`` takes them.

    The reconstructor is listed under both module paths: a checkpoint written with numpy 1.x names it
    ``numpy.core.multiarray.scalar``, one written with numpy 2.x ``numpy._core.multiarray.scalar``.
    """
    scalar = _numpy_scalar_reconstructor()
    return [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,  # called by the pickle to make the scalar's dtype
        type(np.dtype(np.float64)),  # the dtype instance's class (numpy.dtypes.Float64DType): BUILD checks it
    ]


def allow_nerfstudio_checkpoints() -> None:
    """Let ``torch.load(..., weights_only=True)`` read nerfstudio checkpoints; idempotent, cheap.

    A no-op before torch 2.6, where ``torch.load`` does not default to ``weights_only=True``.
    """
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    if (major, minor) < (2, 6):
        return
    torch.serialization.add_safe_globals(nerfstudio_checkpoint_globals())
