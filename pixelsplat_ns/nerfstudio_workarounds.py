"""Every workaround for nerfstudio 1.1.5 in one place, each named with the nerfstudio behaviour it works around.

nerfstudio is pinned (pyproject.toml); ``tests/test_nerfstudio_workarounds.py`` fails when the installed
version differs from ``PINNED_NERFSTUDIO``: then re-check each workaround below against the new version (its
docstring says what nerfstudio does and where), drop those it made unnecessary, and update the pin.

Imported by ``pixelsplat_ns.methods``, so by every ``ns-*`` command: it stays light (no model code).
"""

import dataclasses
import importlib
import os
import sys
from pathlib import Path

import numpy as np
import torch
from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils import writer
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.errors import InputError, OutOfMemory

PINNED_NERFSTUDIO = "1.1.5"


def lazy_target(path: str) -> type:
    """A class standing for ``module:Class`` that imports it only when nerfstudio instantiates it.

    Works around: nerfstudio imports every plugin's entry-point module for every ``ns-*`` command, without
    error handling (``nerfstudio.plugins.registry.discover_methods``), and the configs name their classes in
    ``_target``. Importing the model code there would slow down, or break, every command. Not for a
    datamanager: ``ns-render dataset`` patches ``setup_train`` on its ``_target`` class, which must be real."""
    module, name = path.split(":")

    class Target:
        def __new__(cls, *args, **kwargs):
            return getattr(importlib.import_module(module), name)(*args, **kwargs)

    # Saved configs (config.yml) then name the real class, which loading imports.
    Target.__module__, Target.__name__, Target.__qualname__ = module, name, name
    return Target


# nerfstudio's checkpoints under torch >= 2.6.


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
    data; none can import or call anything else, so every other global is still refused. Called when
    ``pixelsplat_ns.methods`` is imported, which every ``ns-*`` command does through the plugin's entry
    points; importing the library alone (``pixelsplat_ns.encoder``, ...) leaves torch's allow-list as it is.
    A no-op before torch 2.6, where ``torch.load`` does not default to ``weights_only=True``.
    """
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    if (major, minor) < (2, 6):
        return
    torch.serialization.add_safe_globals(nerfstudio_checkpoint_globals())


# Errors.


def report_input_errors_without_traceback() -> None:
    """Print an ``InputError`` that ends an ``ns-*`` command as its message alone, with exit status 1.

    Works around: ``ns-train`` builds the pipeline inside ``nerfstudio.scripts.train.main`` and lets whatever
    it raises reach the top level, so a message about the user's input (context views, cameras, images,
    checkpoints) came at the end of a long traceback. Every other exception keeps its traceback."""
    previous = sys.excepthook

    def hook(kind, error, traceback):
        if issubclass(kind, InputError):
            print(f"\n{kind.__name__}: {error}", file=sys.stderr)
        else:
            previous(kind, error, traceback)

    if not getattr(sys.excepthook, "reports_input_errors", False):
        hook.reports_input_errors = True
        sys.excepthook = hook


# The trainer.


def save_atomically(state: dict, path: Path) -> None:
    """``torch.save`` that never leaves a partial file at ``path``: the state is written beside the checkpoint
    folder (where no tool lists it), flushed to disk, then renamed into place, which is atomic."""
    partial = path.parent.parent / f".saving-{path.name}"
    try:
        with open(partial, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def readable_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """The ``step-*.ckpt`` files of a checkpoint folder, newest first, by their step."""
    steps = []
    for path in folder.glob("step-*.ckpt"):
        try:
            steps.append((int(path.stem.split("-", 1)[1]), path))
        except ValueError:
            continue
    return sorted(steps, reverse=True)


class PixelSplatTrainer(Trainer):
    """nerfstudio's trainer with its fixes, named by what nerfstudio does without them."""

    last_trained_step = None

    def setup(self, test_mode="val") -> None:
        super().setup(test_mode)
        if self.config.max_num_iterations == 0:
            self._finish_a_run_of_zero_iterations()

    def _finish_a_run_of_zero_iterations(self) -> None:
        """Works around: with ``--max-num-iterations 0`` (the per-scene method's feed-forward mode) the
        terminal writer divides by the iteration count and reads a step that only an iteration sets
        (``writer.GLOBAL_BUFFER``)."""
        writer.GLOBAL_BUFFER.update(max_iter=1, step=0)

    def save_checkpoint(self, step: int) -> None:
        """Works around: ``Trainer.save_checkpoint`` writes ``step-*.ckpt`` in place, so a run killed while
        saving leaves a truncated file, which every tool then takes for the latest checkpoint. The same
        checkpoint, written atomically (``save_atomically``)."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = self.checkpoint_dir / f"step-{step:09d}.ckpt"
        pipeline = self.pipeline.module if hasattr(self.pipeline, "module") else self.pipeline
        save_atomically({
            "step": step,
            "pipeline": pipeline.state_dict(),
            "optimizers": {k: v.state_dict() for (k, v) in self.optimizers.optimizers.items()},
            "schedulers": {k: v.state_dict() for (k, v) in self.optimizers.schedulers.items()},
            "scalers": self.grad_scaler.state_dict(),
        }, path)
        if self.config.save_only_latest_checkpoint:
            for other in self.checkpoint_dir.glob("*.ckpt"):
                if other != path:
                    other.unlink()

    def _load_checkpoint(self) -> None:
        """Works around: resuming (``--load-dir``) takes the newest ``step-*.ckpt`` by name and fails on a
        damaged one (or on any other file in the folder). The newest checkpoint that reads is taken; the
        damaged ones are named in a warning."""
        if self.config.load_dir is not None and self.config.load_step is None:
            candidates = readable_checkpoints(Path(self.config.load_dir))
            for step, path in candidates:
                try:
                    torch.load(path, map_location="cpu")
                except Exception as error:  # noqa: BLE001  (any unreadable file is skipped, and said so)
                    CONSOLE.print(f"[bold yellow]skipping the damaged checkpoint {path}: {str(error).splitlines()[0]}")
                    continue
                self.config.load_step = step
                break
            else:
                raise InputError(f"--load-dir {self.config.load_dir}: no readable step-*.ckpt there "
                                 f"({len(candidates)} damaged): resume from another run, or start afresh")
        super()._load_checkpoint()

    def train_iteration(self, step: int):
        """Works around: a CUDA out-of-memory error ends ``ns-train`` with a traceback from inside the step;
        it is reported as what to change."""
        try:
            result = super().train_iteration(step)
        except torch.cuda.OutOfMemoryError as error:
            raise OutOfMemory(
                f"the GPU ran out of memory at training step {step} ({str(error).splitlines()[0]}): for "
                "pixelsplat-pretrain use a smaller --pipeline.datamanager.batch-size (it measures a step before "
                "training unless --pipeline.check-memory False); per scene, a smaller "
                "--pipeline.model.context-short-side") from error
        self.last_trained_step = step
        return result

    def _after_train(self) -> None:
        """Works around: a run stopped early (``stop_training``, e.g. pretraining's time budget) saved its
        final checkpoint one step late, so a resumed run skipped a batch: ``Trainer.train`` advances ``step``
        before it sees the flag. The checkpoint is labelled with the step last trained."""
        if self.last_trained_step is not None:
            self.step = self.last_trained_step
        super()._after_train()


# Dataparsers.

NEUTRAL_DATAPARSER_SETTINGS = {
    "orientation_method": "none",
    "center_method": "none",
    "auto_scale_poses": False,
    "scale_factor": 1.0,
    "eval_mode": "all",
    "downscale_factor": 1,
    "assume_colmap_world_coordinate_convention": False,
    "load_3D_points": False,
}
"""Applied to whichever of these fields a dataparser's config has: keep the input's frame and every frame, and
never write downscaled image copies into the user's folder."""


def parse_input_frame(dataparser_config, data, every_frame: bool = False):
    """The dataparser's training outputs with the poses as the input gives them (``NEUTRAL_DATAPARSER_
    SETTINGS``; the train/eval split kept unless ``every_frame``), to check cameras before nerfstudio
    normalizes them.

    Works around: nerfstudio's dataparsers re-centre and scale the poses (``auto_orient_and_center_poses``,
    ``1 / max |t|``) without checks, so one view, views at one position or one NaN pose turn every pose into
    NaN or infinity, or end in a ZeroDivisionError far from the cause. The dataparser then runs twice: once
    here, once in nerfstudio's datamanager."""
    neutral = {k: v for k, v in NEUTRAL_DATAPARSER_SETTINGS.items()
               if (every_frame or k != "eval_mode") and hasattr(dataparser_config, k)}
    config = dataclasses.replace(dataparser_config, **neutral)
    if data is not None:
        config.data = Path(data)
    quiet, CONSOLE.quiet = CONSOLE.quiet, True  # its notes (e.g. on --eval-mode all) are about this read only
    try:
        return config.setup().get_dataparser_outputs(split="train")
    finally:
        CONSOLE.quiet = quiet


def without_dataparser_alpha(datamanager_config):
    """A copy of the datamanager config whose dataparser leaves RGBA images as they are.

    Works around: nerfstudio's ``InputDataset`` composites RGBA images onto the dataparser's ``alpha_color``
    when it loads them, before the model sees them; the per-scene model composites context views, targets
    and renders onto one background of its own (``--pipeline.model.background-color``)."""
    dataparser = datamanager_config.dataparser
    if getattr(dataparser, "alpha_color", None) is None:
        return datamanager_config
    return dataclasses.replace(datamanager_config, dataparser=dataclasses.replace(dataparser, alpha_color=None))


# Models and datamanagers that do not render rays.


class EvaluatedOverTheIndex(RuntimeError):
    """nerfstudio's per-batch evaluation hooks do not apply: pretraining is scored over the evaluation index."""

    def __init__(self) -> None:
        super().__init__("pixelsplat-pretrain evaluates over the evaluation index: run ns-eval on the run's config")


class SceneBatchModelHooks:
    """For a nerfstudio ``Model`` trained on batches of scenes, not rays (mixed in before ``Model``).

    Works around: ``nerfstudio.models.base_model.Model`` is abstract over ray rendering (``get_outputs``,
    ``get_loss_dict``, ``get_image_metrics_and_images``), which such a model never does, and it carries an
    empty ``device_indicator_param`` that no loss uses, so DDP would need its unused-parameter search."""

    def remove_device_indicator(self) -> None:
        """Call after ``Model.__init__``: then every remaining parameter gets a gradient every step."""
        del self.device_indicator_param

    def get_outputs(self, ray_bundle):
        raise RuntimeError(f"{type(self).__name__} renders batches of scenes through its pipeline, not rays")

    def get_loss_dict(self, outputs, batch, metrics_dict=None):
        return outputs

    def get_image_metrics_and_images(self, outputs, batch):
        return {}, {}


class SceneBatchDataManagerHooks:
    """For a nerfstudio ``DataManager`` of scene batches evaluated elsewhere (mixed in before ``DataManager``).

    Works around: ``DataManager`` is abstract over evaluation batches and images, which pretraining never
    draws (it evaluates over the paper's index, ``PretrainPipeline.get_average_eval_image_metrics``)."""

    def setup_eval(self) -> None:
        pass

    def next_eval(self, step: int):
        raise EvaluatedOverTheIndex()

    def next_eval_image(self, step: int):
        raise EvaluatedOverTheIndex()

    def get_eval_rays_per_batch(self) -> int:
        return self.get_train_rays_per_batch()

    def get_param_groups(self):
        return {}


# Splat models.


def load_splat_state_in_place(model: torch.nn.Module, state_dict: dict, **kwargs):
    """``model.load_state_dict`` for a splatfacto model that may already hold the checkpoint's Gaussians.

    Works around: ``SplatfactoModel.load_state_dict`` resizes the Gaussian parameters to the checkpoint's by
    replacing them with new tensors. The post-training tools build an empty model and need that; a resumed
    run already holds Gaussians of the same shapes, and its optimizer holds those very tensors, so after the
    replacement Adam would step stale tensors (splatfacto gets back in step only when it densifies, which the
    per-scene refinement never does). Same shapes: the values are copied in place."""
    from nerfstudio.models.splatfacto import SplatfactoModel

    if state_dict["gauss_params.means"].shape == model.means.shape:
        return torch.nn.Module.load_state_dict(model, state_dict, **kwargs)
    return SplatfactoModel.load_state_dict(model, state_dict, **kwargs)
