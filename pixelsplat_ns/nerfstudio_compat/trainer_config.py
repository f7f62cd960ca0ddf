"""``PixelSplatTrainerConfig``: nerfstudio's ``TrainerConfig`` with a fix, named by what nerfstudio does without it."""

from dataclasses import dataclass
from pathlib import Path
from typing import Union

from nerfstudio.engine.trainer import TrainerConfig

from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.nerfstudio_compat import install_process_hooks

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
    not exist.

    Works around: ``ns-train`` writes the run's folder and config.yml before the datamanager reads ``--data``
    and the model its encoder file, so a run that cannot start (a mistyped path) left an empty run behind."""

    def save_config(self) -> None:
        data = self.data if self.data is not None else getattr(self.pipeline.datamanager, "data", None)
        if data is not None and not Path(data).exists():
            install_process_hooks()  # ns-train's main calls this before the trainer exists: report it in one line
            raise InputError(missing_data_message(data, per_scene=self.method_name == "pixelsplat"))
        for flag in ("encoder_checkpoint", "encoder_init"):  # read only once the model is built, seconds later
            given = getattr(self.pipeline.model, flag, None)
            if given is not None and not Path(given).exists():
                install_process_hooks()
                raise InputError(
                    f"--pipeline.model.{flag.replace('_', '-')} {given} does not exist: give an official .ckpt, a "
                    "converted .pt or a pixelsplat-pretrain run's config.yml (docs/checkpoints.md says where to get "
                    "the paper's)"
                )
        check_flags = getattr(self.pipeline, "check_flags", None)  # a pipeline's own contradictions
        if callable(check_flags):
            install_process_hooks()
            check_flags()
        super().save_config()
