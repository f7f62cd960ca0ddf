"""Convert an official pixelSplat Lightning checkpoint (re10k.ckpt, acid.ckpt, the ablations, the 3-view
model) into pixelsplat-ns's encoder format: our parameter names plus the configuration it needs.

    python scripts/convert_official_checkpoint.py IN.ckpt OUT.pt [--force]

``load_encoder`` reads the official file directly too; converting makes a smaller file that also records
the configuration. A wrong or partial checkpoint is refused, naming the missing and unexpected keys.
"""

import argparse
from pathlib import Path

from pixelsplat_ns.checkpoints import convert_official, read_checkpoint, save_converted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="official Lightning checkpoint (.ckpt)")
    parser.add_argument("output", type=Path, help="converted checkpoint to write (.pt)")
    parser.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    args = parser.parse_args()
    if args.output.exists() and not args.force:
        parser.error(f"{args.output} exists; pass --force to overwrite it")
    if args.output.resolve() == args.input.resolve():
        parser.error("the output must be a different file from the input")
    config, state_dict = convert_official(read_checkpoint(args.input))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_converted(args.output, config, state_dict)
    variant = ("no epipolar transformer" if not config.use_epipolar_transformer
               else "no depth encoding" if config.epipolar.num_octaves == 0
               else "no probabilistic sampling" if config.num_depth_bins == 1
               else f"{config.num_context_views} context views")
    print(f"converted {len(state_dict)} tensors ({sum(v.numel() for v in state_dict.values()):,} parameters; "
          f"{variant}) to {args.output}")


if __name__ == "__main__":
    main()
