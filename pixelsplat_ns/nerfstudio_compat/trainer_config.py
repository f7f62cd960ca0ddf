"""``PixelSplatTrainerConfig``: nerfstudio's ``TrainerConfig`` with a fix, named by what nerfstudio does without it."""

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import yaml
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.core.atomic_files import check_writable, write_text_atomically
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.nerfstudio_compat import install_process_hooks
from pixelsplat_ns.nerfstudio_compat.dataparsers import check_nerfstudio_transforms
from pixelsplat_ns.nerfstudio_compat.distributed import check_machine_flags, writes_the_run

SCENE_HINT = (
    "give a nerfstudio scene folder (a transforms.json and its images); `pixelsplat-process-data sample "
    "--output-dir DIR` writes the bundled sample scene to DIR"
)
DATASET_HINT = (
    "give a dataset folder of .torch chunks (train/ and test/, each with its index.json), as written by "
    "pixelsplat-to-chunks or pixelsplat-make-synthetic"
)


def missing_data_message(data: Union[str, Path], per_scene: bool) -> str:
    """What to say of a ``--data`` that does not exist: a scene for the per-scene method, a dataset of chunks for
    pretraining."""
    return f"--data {data} does not exist: {SCENE_HINT if per_scene else DATASET_HINT}"


@dataclass
class PixelSplatTrainerConfig(TrainerConfig):
    """nerfstudio's trainer configuration; ``save_config`` first refuses a ``--data`` or an encoder file that does
    not exist (or a scene nerfstudio-data cannot read), and gives the run a folder of its own.

    Works around:
    - ``ns-train`` writes the run's folder and config.yml before the datamanager reads ``--data`` and the model
      its encoder file, so a run that cannot start (a mistyped path) left an empty run behind;
    - a run's folder is named by the second it started, so two runs started in the same second (a sweep, a
      script) shared one: one run's config.yml with the other's checkpoints (``claim_run_folder``);
    - config.yml was written in place (a crash could leave half of it) and a read-only ``--output-dir`` ended
      in a traceback;
    - with several machines every machine wrote a run folder of its own (only machine 0's gets checkpoints), and
      ``--machine`` flags the launcher cannot use failed in an assert or hung (``distributed``)."""

    def save_config(self) -> None:
        install_process_hooks()  # ns-train's main calls this before the trainer exists: report refusals in one line
        data = self.data if self.data is not None else getattr(self.pipeline.datamanager, "data", None)
        per_scene = self.method_name == "pixelsplat"
        if data is not None and not Path(data).exists():
            raise InputError(missing_data_message(data, per_scene=per_scene))
        if per_scene and data is not None and Path(data).is_file() and Path(data).suffix != ".json":
            raise InputError(f"--data {data} is a file: give the scene's folder (or its transforms.json)")
        if per_scene and self.machine.num_devices * self.machine.num_machines > 1:
            raise InputError(
                f"ns-train pixelsplat predicts one scene in one process: --machine.num-devices "
                f"{self.machine.num_devices} --machine.num-machines {self.machine.num_machines} would give the other "
                "processes nothing to do; leave both out (several devices are for ns-train pixelsplat-pretrain)"
            )
        check_machine_flags(self.machine)
        dataparser = getattr(self.pipeline.datamanager, "dataparser", None)
        if per_scene and data is not None and isinstance(dataparser, NerfstudioDataParserConfig):
            check_nerfstudio_transforms(Path(data))  # another format's scene: read seconds later, by the datamanager
        for flag in ("encoder_checkpoint", "encoder_init"):  # read only once the model is built, seconds later
            given = getattr(self.pipeline.model, flag, None)
            if given is not None and not Path(given).exists():
                raise InputError(
                    f"--pipeline.model.{flag.replace('_', '-')} {given} does not exist: give an official .ckpt, a "
                    "converted .pt or a pixelsplat-pretrain run's config.yml (docs/checkpoints.md says where to get "
                    "the paper's)"
                )
        check_flags = getattr(self.pipeline, "check_flags", None)  # a pipeline's own contradictions
        if callable(check_flags):
            check_flags()
        if not writes_the_run(self.machine):
            CONSOLE.log(
                f"machine {self.machine.machine_rank} of {self.machine.num_machines}: the run's folder (config, "
                "checkpoints, logs) is written on machine 0"
            )
            return
        check_writable(self.get_base_dir() / "config.yml")
        config_path = self.claim_run_folder() / "config.yml"
        CONSOLE.log(f"Saving config to: {config_path}")
        write_text_atomically(config_path, yaml.dump(self))

    def claim_run_folder(self) -> Path:
        """Make the run's folder and claim it (an exclusive create of its config.yml, atomic on every platform);
        a folder another run holds gets the next free suffix: ``<timestamp>_2``, ``_3``, ... Returns the folder;
        ``timestamp`` names it from then on (nerfstudio pickles this config into DDP workers after
        ``save_config``)."""
        requested = self.timestamp
        for attempt in itertools.count(1):
            self.timestamp = requested if attempt == 1 else f"{requested}_{attempt}"
            folder = self.get_base_dir()
            folder.mkdir(parents=True, exist_ok=True)
            try:
                (folder / "config.yml").open("x").close()
            except FileExistsError:
                continue
            if attempt > 1:
                CONSOLE.log(f"{folder.parent / requested} already holds a run: this run is {folder}")
            return folder
        raise AssertionError("unreachable")
