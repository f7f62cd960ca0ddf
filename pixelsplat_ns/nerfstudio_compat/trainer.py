"""``PixelSplatTrainer``: nerfstudio's trainer with its fixes, each named by what nerfstudio does without it."""

from pathlib import Path

import torch
from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils import writer
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.core.devices import check_device
from pixelsplat_ns.core.errors import InputError, OutOfMemory
from pixelsplat_ns.core.inert_unpickling import read_pickled_names
from pixelsplat_ns.nerfstudio_compat import install_process_hooks
from pixelsplat_ns.nerfstudio_compat.checkpoints import refuse_foreign_objects, save_atomically, step_checkpoints


class PixelSplatTrainer(Trainer):
    """nerfstudio's trainer with its fixes, named by what nerfstudio does without them."""

    last_trained_step = None

    def __init__(self, config, *args, **kwargs) -> None:
        install_process_hooks()  # before the pipeline reads the user's input or a checkpoint
        check_device(config.machine.device_type)
        super().__init__(config, *args, **kwargs)

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
        wrapped = getattr(self.pipeline, "module", None)  # the pipeline inside DistributedDataParallel
        pipeline = wrapped if isinstance(wrapped, torch.nn.Module) else self.pipeline
        save_atomically(
            {
                "step": step,
                "pipeline": pipeline.state_dict(),
                "optimizers": {k: v.state_dict() for (k, v) in self.optimizers.optimizers.items()},
                "schedulers": {k: v.state_dict() for (k, v) in self.optimizers.schedulers.items()},
                "scalers": self.grad_scaler.state_dict(),
            },
            path,
        )
        if self.config.save_only_latest_checkpoint:
            for other in self.checkpoint_dir.glob("*.ckpt"):
                if other != path:
                    other.unlink()

    def _load_checkpoint(self) -> None:
        """Works around:
        - resuming (``--load-dir``) takes the newest ``step-*.ckpt`` by name and fails on a damaged one (or on
          any other file in the folder). The newest checkpoint that reads is taken; the damaged ones are named
          in a warning;
        - nerfstudio reads the checkpoint with a plain ``torch.load``, which before torch 2.6 runs whatever
          the file's pickle names. The file is read inertly first (``core.inert_unpickling``) and refused when it
          names anything a nerfstudio checkpoint does not (``unexpected_globals``)."""
        load_dir, load_step = self.config.load_dir, self.config.load_step
        if load_dir is not None and load_step is None:
            candidates = step_checkpoints(Path(load_dir))
            for step, path in candidates:
                try:
                    _, names = read_pickled_names(path)
                except Exception as error:  # noqa: BLE001  (any unreadable file is skipped, and said so)
                    CONSOLE.print(f"[bold yellow]skipping the damaged checkpoint {path}: {str(error).splitlines()[0]}")
                    continue
                refuse_foreign_objects(path, names)
                self.config.load_step = step
                break
            else:
                raise InputError(
                    f"--load-dir {load_dir}: no readable step-*.ckpt there "
                    f"({len(candidates)} damaged): resume from another run, or start afresh"
                )
        else:
            given = (
                Path(load_dir) / f"step-{load_step:09d}.ckpt" if load_dir is not None else self.config.load_checkpoint
            )
            if given is not None and Path(given).is_file():
                try:
                    _, names = read_pickled_names(given)
                except Exception as error:  # noqa: BLE001
                    raise InputError(
                        f"{given} is not a readable checkpoint ({str(error).splitlines()[0]}): resume from another "
                        "step or run"
                    ) from error
                refuse_foreign_objects(Path(given), names)
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
                "--pipeline.model.context-short-side"
            ) from error
        self.last_trained_step = step
        return result

    def _after_train(self) -> None:
        """Works around: a run stopped early (``stop_training``, e.g. pretraining's time budget) saved its
        final checkpoint one step late, so a resumed run skipped a batch: ``Trainer.train`` advances ``step``
        before it sees the flag. The checkpoint is labelled with the step last trained."""
        if self.last_trained_step is not None:
            self.step = self.last_trained_step
        super()._after_train()
