"""``PixelSplatTrainer``: nerfstudio's trainer with its fixes, each named by what nerfstudio does without it."""

import shutil
import signal
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Optional

import torch
from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils import comms, writer
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.core.atomic_files import check_writable, tensor_bytes
from pixelsplat_ns.core.devices import check_device
from pixelsplat_ns.core.errors import InputError, OutOfMemory
from pixelsplat_ns.core.inert_unpickling import read_pickled_names
from pixelsplat_ns.core.stop_signals import quit_now, stop_requests
from pixelsplat_ns.nerfstudio_compat import install_process_hooks
from pixelsplat_ns.nerfstudio_compat.checkpoints import refuse_foreign_objects, save_atomically, step_checkpoints

UNSTARTED_RUN_FILES = ("config.yml", "dataparser_transforms.json", "events.out.tfevents.*")
"""What a run's folder holds before its first checkpoint (nerfstudio's ``logging.relative_log_dir`` is the folder
itself)."""


class PixelSplatTrainer(Trainer):
    """nerfstudio's trainer with its fixes, named by what nerfstudio does without them."""

    last_trained_step: Optional[int] = None
    stopped_by: Optional[str] = None
    """The signal that asked the run to stop (``SIGINT``: Ctrl-C; ``SIGTERM``), if one did."""
    _release_stop_signals: Callable[[], None] = staticmethod(lambda: None)
    _saved_at_end: Optional[int] = None
    """The step ``_after_train`` saved (nerfstudio's own ``_after_train`` then saves it again: skipped)."""

    def __init__(self, config, *args, **kwargs) -> None:
        """Works around: with several processes every one printed the run's messages ("Training Finished" once
        per process), the first process of each machine started a viewer, and no process chose its GPU. The
        process of global rank 0 speaks for the run; another one's error still ends the run through the launcher
        (``distributed``); each process makes its GPU, ``cuda:<local rank>``, the current one."""
        install_process_hooks()  # before the pipeline reads the user's input or a checkpoint
        check_device(config.machine.device_type)
        if not comms.is_main_process():
            CONSOLE.quiet = True  # this process's console only: each process has its own
            if config.is_viewer_enabled() or config.is_viewer_legacy_enabled():
                config.vis = "tensorboard"  # whose writers, like every nerfstudio writer, write on rank 0 alone
        super().__init__(config, *args, **kwargs)
        if self.world_size > 1 and config.machine.device_type == "cuda":
            # nerfstudio's worker never chooses the GPU: NCCL's calls without a tensor (the final barrier) would
            # all go to GPU 0.
            torch.cuda.set_device(self.local_rank)

    def setup(self, test_mode="val") -> None:
        """Works around: the set-up (reading the scene, predicting it: seconds to minutes) ran after ``ns-train``
        had made the run's folder; a set-up that failed, or that Ctrl-C or SIGTERM ended (with a traceback from
        wherever it landed, inside a compiled kernel an unrelated ``SystemError``), left that folder holding a
        config.yml and nothing to resume. Now a signal ends the set-up at once in one line, and either way the
        folder is removed again while it holds only what the run wrote before training. Before training, the
        disk must also have room for a checkpoint (``_check_room_for_checkpoints``), not only at the first save."""
        quit_at_once = self._quit_during_setup
        # With several processes nerfstudio's launcher handles the signals.
        with stop_requests(quit_at_once, quit_at_once) if self.world_size == 1 else nullcontext():
            try:
                super().setup(test_mode)
                self._check_room_for_checkpoints()
            except BaseException:
                self._remove_unstarted_run_folder()
                raise
        if self.config.max_num_iterations == 0:
            self._finish_a_run_of_zero_iterations()

    def _quit_during_setup(self, signal_name: str) -> None:
        self._remove_unstarted_run_folder()
        quit_now(signal_name, f"{signal_name} before training started: stopped, with nothing to save")

    def _remove_unstarted_run_folder(self) -> None:
        """Remove the run's folder if it holds nothing but ``UNSTARTED_RUN_FILES`` and an empty checkpoint folder
        (by the main process: the others share it)."""
        folder = Path(self.base_dir)
        if not comms.is_main_process() or not folder.is_dir():
            return
        ours = {path for pattern in UNSTARTED_RUN_FILES for path in folder.glob(pattern)}
        models = Path(self.checkpoint_dir)
        if models.is_dir() and not any(models.iterdir()):
            ours.add(models)
        if set(folder.iterdir()) <= ours:
            shutil.rmtree(folder, ignore_errors=True)

    def _check_room_for_checkpoints(self) -> None:
        """Refuse, before training, a checkpoint folder whose disk cannot take one checkpoint: the pipeline's
        weights, and for a run that trains the optimizer's two moments of each (Adam). Raises ``CannotWrite``."""
        if not comms.is_main_process():
            return
        weights = tensor_bytes(self.pipeline.state_dict())
        needed = weights * (3 if self.config.max_num_iterations > 0 else 1)
        check_writable(Path(self.checkpoint_dir) / "step-000000000.ckpt", needed)

    def _finish_a_run_of_zero_iterations(self) -> None:
        """Works around: with ``--max-num-iterations 0`` (the per-scene method's feed-forward mode) the
        terminal writer divides by the iteration count and reads a step that only an iteration sets
        (``writer.GLOBAL_BUFFER``)."""
        writer.GLOBAL_BUFFER.update(max_iter=1, step=0)

    def save_checkpoint(self, step: int) -> None:
        """Works around: ``Trainer.save_checkpoint`` writes ``step-*.ckpt`` in place, so a run killed while
        saving leaves a truncated file, which every tool then takes for the latest checkpoint. The same
        checkpoint, written atomically (``save_atomically``), by the main process only (as nerfstudio's own
        ``save_checkpoint``, whose ``check_main_thread`` an override does not inherit)."""
        if not comms.is_main_process() or step == self._saved_at_end:
            return
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
                "processes": self.world_size,  # read on resume (_say_how_the_stream_goes_on); nerfstudio ignores it
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
        content = None
        if load_dir is not None and load_step is None:
            candidates = step_checkpoints(Path(load_dir))
            for step, path in candidates:
                try:
                    content, names = read_pickled_names(path)
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
                    content, names = read_pickled_names(given)
                except Exception as error:  # noqa: BLE001
                    raise InputError(
                        f"{given} is not a readable checkpoint ({str(error).splitlines()[0]}): resume from another "
                        "step or run"
                    ) from error
                refuse_foreign_objects(Path(given), names)
        super()._load_checkpoint()
        if isinstance(content, dict):
            self._say_how_the_stream_goes_on(content)

    def _say_how_the_stream_goes_on(self, checkpoint: dict) -> None:
        """A run resumed in another number of processes than it was saved from trains on: say what changes (the
        global batch, and which scenes each process reads from the next step on)."""
        saved = checkpoint.get("processes", 1)  # checkpoints older than this key: one process
        if not isinstance(saved, int) or saved == self.world_size:
            return
        CONSOLE.log(
            f"[bold yellow]resuming in {self.world_size} process(es) a run saved from {saved}: from step "
            f"{self._start_step} on, a step's batch is {self.world_size} x --pipeline.datamanager.batch-size "
            f"examples (it was {saved} x), and the scenes are shared among {self.world_size} process(es), so the data "
            f"stream goes on in another order than the {saved}-process run's"
        )

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

    def train(self) -> None:
        """Works around: Ctrl-C (or a scheduler's SIGTERM) ended ``ns-train`` with a KeyboardInterrupt traceback
        from wherever it landed, and everything trained since the last ``--steps-per-save`` was lost. It asks the
        run to stop instead (``core.stop_signals``): the step in progress finishes, the state is saved atomically
        and the command to go on is printed; a second Ctrl-C quits at once. With several processes (DDP) nerfstudio's
        own handling is kept: the ranks must stop at the same step."""
        if self.world_size > 1:
            return super().train()
        with stop_requests(self._request_stop) as self._release_stop_signals:
            super().train()
        if self.stopped_by is not None:
            raise SystemExit(128 + signal.Signals[self.stopped_by].value)

    def _request_stop(self, signal_name: str) -> None:
        self.stopped_by = signal_name
        self.stop_training = True  # read by Trainer.train before each step
        again = "Ctrl-C" if signal_name == "SIGINT" else signal_name
        CONSOLE.print(
            f"[bold yellow]{signal_name}: stopping once step {self.step} is done, to save the run "
            f"({again} again quits at once, without saving)"
        )

    def _after_train(self) -> None:
        """Works around:
        - a run stopped early (``stop_training``, e.g. pretraining's time budget) saved its final checkpoint one
          step late, so a resumed run skipped a batch: ``Trainer.train`` advances ``step`` before it sees the
          flag. The checkpoint is labelled with the step last trained;
        - the final checkpoint is saved here, while a signal is still only a request (``train``), so a Ctrl-C or
          SIGTERM during the save waits for it instead of losing the run;
        - a run stopped by a signal says how to go on instead of announcing a finished run and waiting for the
          viewer. Stopped before its first step, a run that trains saves nothing new (a feed-forward run, which
          has no steps, is saved: the prediction is its result)."""
        trained = self.last_trained_step is not None
        if self.last_trained_step is not None:
            self.step = self.last_trained_step
        if self.stopped_by is not None and not trained and self.config.max_num_iterations > 0:
            CONSOLE.print(f"[bold yellow]{self.stopped_by} before the first step of this run: nothing new to save")
            self._remove_unstarted_run_folder()
            return
        self.save_checkpoint(self.step)
        self._saved_at_end = self.step
        if self.stopped_by is None:
            self._release_stop_signals()  # Ctrl-C ends the viewer's wait, as in nerfstudio
            return super()._after_train()
        writer.write_out_storage()
        saved = self.checkpoint_dir / f"step-{self.step:09d}.ckpt"
        last_step = self._start_step + self.config.max_num_iterations - 1
        if self.step >= last_step:
            CONSOLE.print(f"[bold yellow]stopped ({self.stopped_by}) after the run's last step; saved {saved}")
            return
        CONSOLE.print(
            f"[bold yellow]stopped ({self.stopped_by}) after step {self.step}; saved {saved}. To go on to step "
            f"{last_step}, run the same ns-train command with --max-num-iterations {last_step - self.step} and "
            f"--load-dir {self.checkpoint_dir}"
        )
