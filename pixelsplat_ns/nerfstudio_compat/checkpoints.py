"""nerfstudio's own checkpoints (``step-*.ckpt``): reading them under torch >= 2.6, writing them atomically,
listing them by step, and loading a splat model's state in place."""

from pathlib import Path

import numpy as np
import torch

from pixelsplat_ns.core.atomic_files import tensor_bytes, write_atomically
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.torch_versions import TORCH_VERSION


def _numpy_scalar_reconstructor():
    """``scalar`` from numpy's multiarray module (``numpy._core`` from numpy 2, ``numpy.core`` before)."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2 without the numpy._core alias
        from numpy.core.multiarray import scalar
    return scalar


def nerfstudio_checkpoint_globals() -> list:
    """The allow-list entries of ``allow_numpy_scalars_in_checkpoints``, as ``add_safe_globals`` takes them.

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


NERFSTUDIO_CHECKPOINT_NAMES = frozenset(
    {"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype", "_codecs.encode"}
)
"""What a nerfstudio ``step-*.ckpt`` names beyond tensors and containers: its schedulers' numpy scalars (the
scalar reconstructor under numpy 1's and 2's module paths, the dtype, and the bytes' codec)."""


def refuse_foreign_objects(path: Path, names: set[str]) -> None:
    """Raise ``InputError`` when a checkpoint about to be given to nerfstudio's loader (a plain ``torch.load``)
    names anything beyond ``NERFSTUDIO_CHECKPOINT_NAMES`` (``names``: from ``read_pickled_names``, which
    constructed none of them): loading it would call them."""
    foreign = sorted(names - NERFSTUDIO_CHECKPOINT_NAMES)
    if foreign:
        raise InputError(
            f"{path} names {', '.join(foreign[:5])}, which no nerfstudio checkpoint does: it was not loaded "
            "(nerfstudio's loader would run it). Resume from a checkpoint your own run wrote"
        )


def allow_numpy_scalars_in_checkpoints() -> None:
    """Let ``torch.load(..., weights_only=True)`` read nerfstudio's own ``step-*.ckpt``; idempotent, cheap.

    Works around: nerfstudio saves ``{"step", "pipeline", "optimizers", "schedulers", "scalers"}`` and reads
    it back with a plain ``torch.load(path, map_location="cpu")`` (``eval_utils.eval_load_checkpoint`` for
    ``ns-viewer``, ``ns-eval``, ``ns-render``, ``ns-export``; ``Trainer._load_checkpoint`` on resume). Since
    torch 2.6 that means ``weights_only=True``, and its learning-rate schedulers' lambdas
    (``ExponentialDecayScheduler``, ``CosineDecayScheduler``) return numpy float64 values, so ``_last_lr`` and
    the param groups' ``lr`` are pickled as numpy scalars: ``numpy.core.multiarray.scalar(dtype, bytes)``
    with a dtype rebuilt by ``numpy.dtype(...)`` and a ``BUILD``, all refused by torch's safe unpickler.

    This adds exactly those three to torch's allow-list. Each only turns a type code and bytes into plain
    data; none can import or call anything else, so every other global is still refused. Called when a
    pixelsplat trainer or pipeline is set up (``install_process_hooks``), never at import.
    A no-op before torch 2.6, where ``torch.load`` does not default to ``weights_only=True``.
    """
    if TORCH_VERSION < (2, 6):
        return
    torch.serialization.add_safe_globals(nerfstudio_checkpoint_globals())


def save_atomically(state: dict, path: Path) -> None:
    """``torch.save`` that never leaves a partial file at ``path`` (``core.atomic_files.write_atomically``). The
    temporary file goes beside the checkpoint folder: nerfstudio's tools take every file in that folder for a
    checkpoint (``eval_utils.eval_load_checkpoint`` parses each name's step). A full disk or a read-only folder
    raises ``CannotWrite``, checked against the state's size before anything is written."""
    write_atomically(path, lambda file: torch.save(state, file), tensor_bytes(state), partial_folder=path.parent.parent)


def step_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` for every ``step-<int>.ckpt`` file of a checkpoint folder, newest (highest step) first.

    Only the name is looked at: a file may still be damaged or unreadable (``PixelSplatTrainer._load_checkpoint``
    tries each in turn); a ``step-*.ckpt`` whose step is not an integer is left out. Empty for a missing folder."""
    steps = []
    for path in folder.glob("step-*.ckpt"):
        try:
            steps.append((int(path.stem.split("-", 1)[1]), path))
        except ValueError:
            continue
    return sorted(steps, reverse=True)


def load_splat_state_in_place(model: torch.nn.Module, state_dict: dict, **kwargs):
    """``model.load_state_dict`` for a splatfacto model that may already hold the checkpoint's Gaussians.

    Works around: ``SplatfactoModel.load_state_dict`` resizes the Gaussian parameters to the checkpoint's by
    replacing them with new tensors. The post-training tools build an empty model and need that; a resumed
    run already holds Gaussians of the same shapes, and its optimizer holds those very tensors, so after the
    replacement Adam would step stale tensors (splatfacto gets back in step only when it densifies, which the
    per-scene refinement never does). Same shapes: the values are copied in place."""
    from nerfstudio.models.splatfacto import SplatfactoModel  # here: nerfstudio's models are slow to import

    if not isinstance(model, SplatfactoModel):
        raise TypeError(f"load_splat_state_in_place loads a splatfacto model, not a {type(model).__name__}")
    if state_dict["gauss_params.means"].shape == model.means.shape:
        return torch.nn.Module.load_state_dict(model, state_dict, **kwargs)
    return SplatfactoModel.load_state_dict(model, state_dict, **kwargs)
