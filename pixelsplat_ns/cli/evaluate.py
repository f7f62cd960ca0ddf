"""``pixelsplat-evaluate``: an encoder scored the way the paper does it, over an evaluation index.

    pixelsplat-evaluate --checkpoint re10k.ckpt --data datasets/re10k \
        --index ../shared/reference/evaluation_index_re10k.json --output-path outputs/eval_re10k.json

Takes any encoder file ``load_encoder`` reads. Renders every target of every indexed scene, writes per-scene
and mean metrics to JSON and prints the paper's table (PSNR, SSIM, LPIPS, encode and render seconds, peak
memory). LPIPS needs torchvision's VGG-16 weights; offline, ``--skip-lpips`` reports PSNR and SSIM only.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional

import torch
import tyro
from tqdm import tqdm

from pixelsplat_ns.checkpoints import CheckpointError
from pixelsplat_ns.cli import check_output_file, input_errors_exit
from pixelsplat_ns.core.atomic_files import write_text_atomically
from pixelsplat_ns.core.errors import InputError


@dataclass
class Evaluate:
    """Evaluate an encoder checkpoint with the paper's protocol."""

    checkpoint: Path
    """Encoder: an official .ckpt, a converted .pt, or a pixelsplat-pretrain run's config.yml."""
    data: Path
    """Dataset root with <split>/*.torch and index.json."""
    index: Path
    """Evaluation index JSON (official format)."""
    output_path: Path = Path("outputs/evaluation.json")
    """Per-scene and mean metrics (JSON)."""
    split: str = "test"
    """Split folder under DATA."""
    image_size: tuple[int, int] = (256, 256)
    """Height and width the frames are resized and cropped to (multiples of 16)."""
    crop_intrinsics: Literal["official", "exact"] = "official"
    """'official' reproduces the official crop (cx, cy kept); 'exact' moves the principal point with the crop."""
    deterministic: bool = False
    """Each pixel's most likely depth bin instead of the paper's sampling."""
    limit: Optional[int] = None
    """Only the first N scenes of the index."""
    sh_rotation: Optional[Literal["official", "frame_independent"]] = None
    """SH rotation to the world (default: the checkpoint's own; the paper's: official, in the dataset's frame)."""
    sh_coefficient_14: Optional[Literal["official_forward_kernel", "consistent"]] = None
    """Degree-3 SH coefficient 14 (default: the checkpoint's own; official checkpoints: official_forward_kernel,
    what the paper measured)."""
    skip_lpips: bool = False
    """Report PSNR and SSIM only (LPIPS needs VGG-16 weights on disk)."""
    device: str = field(default_factory=lambda: "cuda" if torch.cuda.is_available() else "cpu")
    """Where the encoder runs: cuda when there is a GPU, else cpu."""
    force: bool = False
    """Overwrite OUTPUT_PATH if it exists."""


def main(argv: Optional[list[str]] = None) -> None:
    args = tyro.cli(Evaluate, args=argv, prog="pixelsplat-evaluate")
    from pixelsplat_ns.checkpoints import build_encoder, read_encoder
    from pixelsplat_ns.encoder.config import with_sh_convention
    from pixelsplat_ns.evaluation import EvaluationConfig, evaluate
    from pixelsplat_ns.metrics import load_lpips_vgg

    with input_errors_exit(FileNotFoundError, FileExistsError, KeyError, ValueError, CheckpointError):
        check_output_file(args.output_path, args.force, [args.checkpoint, args.index])
        encoder_file = read_encoder(args.checkpoint)
        print(f"encoder: {args.checkpoint}: {encoder_file.summary()}")
        encoder = build_encoder(encoder_file.config, encoder_file.state_dict, args.device)
        encoder.config = with_sh_convention(encoder.config, args.sh_rotation, args.sh_coefficient_14)
        multiple = encoder.size_multiple
        if any(side % multiple for side in args.image_size):
            raise ValueError(
                f"--image-size {args.image_size[0]} {args.image_size[1]}: both sides must be multiples "
                f"of {multiple} for this encoder"
            )
        try:
            lpips_model = None if args.skip_lpips else load_lpips_vgg(args.device)
        except RuntimeError as error:
            raise FileNotFoundError(f"{error} Or pass --skip-lpips to report PSNR and SSIM only.") from error
        config = EvaluationConfig(
            image_shape=args.image_size,
            split=args.split,
            crop_intrinsics=args.crop_intrinsics,
            deterministic=args.deterministic,
            limit=args.limit,
        )
        results = evaluate(
            encoder,
            args.data,
            args.index,
            config,
            lpips_model,
            progress=lambda items: tqdm(items, desc="scenes", unit="scene"),
        )
    results["settings"] = {k: str(v) for k, v in asdict(args).items()}
    with input_errors_exit(InputError, OSError):  # checked before the work, yet the disk may have filled since
        args.output_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(args.output_path, json.dumps(results, indent=2))

    mean = results["mean"]
    show = lambda value, digits: "-" if value is None else f"{value:.{digits}f}"  # noqa: E731
    print(
        f"{'scenes':>6} {'images':>6} {'PSNR':>7} {'SSIM':>6} {'LPIPS':>6} "
        f"{'encode s':>9} {'render s':>9} {'memory GB':>9}"
    )
    print(
        f"{mean['scenes']:>6} {mean['images']:>6} {show(mean['psnr'], 2):>7} {show(mean['ssim'], 3):>6} "
        f"{show(mean['lpips'], 3):>6} {show(mean['encode_seconds'], 3):>9} {show(mean['render_seconds'], 3):>9} "
        f"{results['peak_memory_gb']:>9.2f}"
    )
    print(f"per-scene results: {args.output_path}")


if __name__ == "__main__":
    main()
