"""Export the encoder of a ``ns-train pixelsplat-pretrain`` run as a converted checkpoint for load_encoder.

    python scripts/export_encoder.py --load-config outputs/.../config.yml --output encoder.pt [--step N]

Reads the run's config.yml the way nerfstudio's own tools do (it names classes to import: only export runs
you made or trust) and the latest checkpoint (or --step) next to it.
"""

import argparse
from pathlib import Path

import yaml

from pixelsplat_ns.checkpoints import encoder_from_pretraining, read_checkpoint, save_converted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load-config", type=Path, required=True, help="config.yml of a pretraining run")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    args = parser.parse_args()
    if args.output.exists() and not args.force:
        parser.error(f"{args.output} exists; pass --force to overwrite it")
    config = yaml.load(args.load_config.read_text(), Loader=yaml.Loader)
    encoder_config = getattr(getattr(getattr(config, "pipeline", None), "model", None), "encoder", None)
    if encoder_config is None:
        parser.error(f"{args.load_config} is not the config of a pixelsplat-pretrain run")
    models = args.load_config.parent / "nerfstudio_models"
    checkpoints = sorted(models.glob("step-*.ckpt"))
    if args.step is not None:
        checkpoints = [c for c in checkpoints if c.name == f"step-{args.step:09d}.ckpt"]
    if not checkpoints:
        parser.error(f"no checkpoint{'' if args.step is None else f' for step {args.step}'} in {models}")
    state_dict = encoder_from_pretraining(read_checkpoint(checkpoints[-1]), encoder_config)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    image_shape = tuple(config.pipeline.datamanager.dataset.image_shape)
    save_converted(args.output, encoder_config, state_dict, image_shape)
    print(f"exported the encoder of {checkpoints[-1]} to {args.output}")


if __name__ == "__main__":
    main()
