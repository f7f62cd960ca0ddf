"""The GPU check: pixelsplat-ns's CUDA paths proven in one process, with a printed table and a JSON report.

1. ``rasterize``: the gsplat backend, the torch backend on the GPU and the torch backend on the CPU draw the
   same colours, alphas and depths, with the same gradients, on random scenes (SH degrees 0-3, several
   cameras, quaternions and covariances) and on the paper-scale scene (393,216 Gaussians into 256 x 256).
2. The encoder (paper preset, shared random weights): deterministic Gaussians on the GPU equal the CPU's, and
   the CPU-only routes (``pixelsplat_ns.fast_routes.layers``) are not taken on the GPU.
3. Timings, synchronized, fastest of several after warm-up: encode 2 x 256^2, render one 256^2 view with
   gsplat and with the torch backend, a pretraining step at batch 7 with its peak memory; each in float32,
   with TF32 and with bf16 autocast, with how far the Gaussians move from float32's.
4. ``ddp``: two processes on the one device (``torch.multiprocessing``), each a DistributedDataParallel rank
   around the tiny encoder's training loss, a few Adam steps on its own data, batches from a
   ``DataLoader(pin_memory=True)`` moved by non-blocking copies: the parameters must be equal across the ranks
   afterwards (DDP broadcast rank 0's differently seeded ones and averaged the gradients) and must have moved;
   the time of a step. On a GPU, NCCL first: most NCCL versions refuse two ranks on one GPU ("Duplicate GPU
   detected"), which the report records as the reason, then gloo with CUDA tensors; on the CPU, gloo.

Comparisons are ``allclose`` with rtol = atol = 1e-4 (TF32 and bf16: 1e-2, reported, not required); the
"error" column is the largest |a - b| / (1 + |b|). It needs no nerfstudio and no network: only torch, einops,
jaxtyping, numpy, pillow, pyyaml, torchvision (the official-comparison inputs) and, on a GPU, gsplat;
``lpips`` (random weights, no download) when present, for the training step's memory.

On the device machine (Python 3.12, torch 2.11 + CUDA 13, no nerfstudio, no network), from the repository root.
Here, once (wheels for gsplat 1.4.0, which nerfstudio 1.1.5 pins, the newest gsplat as the fallback, and
lpips; .gitignore keeps .whl/ out of git, so the call must carry it):

    for wheel in gsplat==1.4.0 gsplat==1.5.3 lpips==0.1.4; do python3 -m pip download --no-deps \
        --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 -d .whl $wheel; done

There, in one call that carries ``.whl`` (gsplat compiles its CUDA code on first use; the compile time is
reported; if 1.4.0 does not build, the fallback wheel is installed and tried, and the report says so). CUDA_HOME
must name the toolkit, not the folder of a linked nvcc, or the C++ binding misses cuda_runtime.h:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/lpips-0.1.4-*.whl \
        .whl/gsplat-1.4.0-*.whl && export PYTHONPATH=/tmp/site:. MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0 \
        PYTHONUNBUFFERED=1 CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $(readlink -f $(which nvcc))))} \
        && python3 scripts/gpu_check.py --out $OUT --fallback-gsplat-wheel .whl/gsplat-1.5.3-py3-none-any.whl

Without a GPU, gsplat 1.4.0's CUDA sources were seen to compile with nvcc 13.0 for sm_90 and its binding to
link and load against torch 2.14's headers (a long compile): it should build there.

Here, without a GPU (``tests/test_gpu_check.py`` runs it so, with nerfstudio made unimportable):

    python scripts/gpu_check.py --device cpu --quick --out outputs/gpu_check
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
# The package, where it is not installed (the device machine), and scripts/benchmarks/official_encoder.py.
sys.path[:0] = [str(ROOT), str(ROOT / "scripts" / "benchmarks")]

from official_encoder import as_views, example_inputs  # noqa: E402  (scripts/benchmarks/)

from pixelsplat_ns.core.conventions import to_gsplat  # noqa: E402
from pixelsplat_ns.core.views import Views, to_device  # noqa: E402
from pixelsplat_ns.encoder import PixelSplatEncoder, paper, tiny  # noqa: E402
from pixelsplat_ns.encoder.random_draws import per_example_generators  # noqa: E402
from pixelsplat_ns.evaluation import peak_memory_gb  # noqa: E402
from pixelsplat_ns.fast_routes import layers as fast_layers  # noqa: E402
from pixelsplat_ns.pretraining.loss import LossConfig, pretraining_loss  # noqa: E402
from pixelsplat_ns.render import rasterize  # noqa: E402
from pixelsplat_ns.synthetic_gaussians import orbit_c2w, pixel_aligned_scene  # noqa: E402

TOLERANCE = 1e-4
REDUCED_PRECISION_TOLERANCE = 1e-2
PAPER = {"encode_s": 0.102, "render_s": 0.002, "training_memory_gb": 14.4}
"""The paper's figures on its GPU: encode 2 x 256^2, render one view, training memory at batch 7."""
DDP_DEADLINE_S = 180.0
"""Seconds after which the two DDP ranks are killed: a rank whose peer failed may wait for a collective's
timeout (imports, CUDA start-up and a few steps of the tiny encoder take far less)."""


class Report:
    """Rows of the printed table, kept for the JSON report."""

    def __init__(self) -> None:
        self.checks: list[dict] = []
        self.timings: list[dict] = []
        self.notes: list[str] = []

    def check(self, section: str, case: str, error: float, tolerance: float = TOLERANCE, required: bool = True):
        row = {
            "section": section,
            "case": case,
            "error": error,
            "tolerance": tolerance,
            "ok": error <= tolerance,
            "required": required,
        }
        self.checks.append(row)
        mark = "ok" if row["ok"] else ("FAIL" if required else "over")
        print(f"  {section:<10} {case:<78} {error:10.2e} {tolerance:8.0e}  {mark}", flush=True)

    def timing(self, case: str, seconds: float, **extra) -> None:
        self.timings.append({"case": case, "seconds": seconds, **extra})
        more = "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items())
        print(f"  {case:<46} {seconds:9.4f} s  {more}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


def difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / (1 + |b|): within t means ``allclose(a, b, rtol=t, atol=t)``."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if a.shape != b.shape:
        return float("inf")
    return float(((a - b).abs() / (1 + b.abs())).max()) if a.numel() else 0.0


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fastest(function: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


# gsplat.


def compile_gsplat(pythonpath: str) -> tuple[bool, float, str]:
    """Import gsplat's CUDA backend in a child process (the import compiles it, once): ok, seconds, log."""
    code = (
        "import gsplat, gsplat.cuda._backend as b; import sys; print('gsplat', gsplat.__version__); "
        "sys.exit(b._C is None)"
    )
    env = dict(os.environ, PYTHONPATH=pythonpath)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return result.returncode == 0, time.perf_counter() - start, (result.stdout + result.stderr)[-4000:]


def prepare_gsplat(fallback_wheel: str | None, report: Report) -> dict:
    """gsplat 1.4.0 (what nerfstudio 1.1.5 pins), compiled; else the fallback wheel. Returns what happened."""
    info: dict = {"attempts": []}
    pythonpath = os.environ.get("PYTHONPATH", "")
    ok, seconds, log = compile_gsplat(pythonpath)
    info["attempts"].append({"pythonpath": pythonpath, "ok": ok, "seconds": seconds, "log": log})
    version = next((line for line in log.splitlines() if line.startswith("gsplat ")), "gsplat ?")
    report.note(f"{version} compile: {'ok' if ok else 'FAILED'} in {seconds:.0f} s")
    if not ok and fallback_wheel:
        site = tempfile.mkdtemp(prefix="gsplat-fallback-")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", site, fallback_wheel],
            check=True,
        )
        pythonpath = os.pathsep.join(p for p in (site, pythonpath) if p)
        ok, seconds, log = compile_gsplat(pythonpath)
        info["attempts"].append({"pythonpath": pythonpath, "ok": ok, "seconds": seconds, "log": log})
        report.note(f"fallback {Path(fallback_wheel).name}: {'ok' if ok else 'FAILED'} in {seconds:.0f} s")
        if ok:
            sys.path.insert(0, site)
    info["ok"] = ok
    if ok:
        import gsplat

        info["version"] = gsplat.__version__
    return info


# 1. rasterize.


def random_scene(n: int, cameras: int, sh_degree: int, seed: int, width: int, height: int) -> dict:
    """Gaussians in front of ``cameras`` cameras turned a little about the origin, CPU float32."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * torch.tensor([1.0, 0.7, 0.5]) + torch.tensor([0.0, 0.0, 4.0])
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.15 + 0.01
    opacities = torch.rand(n, generator=g) * 0.9 + 0.05
    colors = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3
    viewmats = torch.eye(4).repeat(cameras, 1, 1)
    for c in range(cameras):
        angle = 0.15 * (c - (cameras - 1) / 2)
        viewmats[c, :3, :3] = torch.tensor(
            [
                [torch.cos(torch.tensor(angle)), 0, torch.sin(torch.tensor(angle))],
                [0, 1, 0],
                [-torch.sin(torch.tensor(angle)), 0, torch.cos(torch.tensor(angle))],
            ]
        )
        viewmats[c, :3, 3] = torch.tensor([0.3 * c, -0.1 * c, 0.2 * c])
    Ks = torch.tensor([[0.9 * width, 0, 0.52 * width], [0, 0.95 * width, 0.47 * height], [0, 0, 1.0]])
    return {
        "means": means,
        "quats": quats,
        "scales": scales,
        "opacities": opacities,
        "colors": colors,
        "viewmats": viewmats,
        "Ks": Ks.expand(cameras, 3, 3).clone(),
        "width": width,
        "height": height,
        "sh_degree": sh_degree,
    }


def render_with_gradients(scene: dict, covars: bool, device: torch.device, backend: str, seed: int) -> dict:
    """Colours, alphas, accumulated depth and the gradients of a fixed random loss."""
    from pixelsplat_ns.render.projection import quat_scale_to_covar

    leaves = {
        k: scene[k].to(device).clone().requires_grad_() for k in ("means", "quats", "scales", "opacities", "colors")
    }
    if covars:
        covariance = quat_scale_to_covar(leaves["quats"], leaves["scales"]).detach().requires_grad_()
        leaves = {k: v for k, v in leaves.items() if k not in ("quats", "scales")} | {"covars": covariance}
    arguments = dict(leaves)
    if covars:
        arguments.update(quats=None, scales=None)
    image, alpha, _ = rasterize(
        arguments["means"],
        arguments["quats"],
        arguments["scales"],
        arguments["opacities"],
        arguments["colors"],
        scene["viewmats"].to(device),
        scene["Ks"].to(device),
        scene["width"],
        scene["height"],
        sh_degree=scene["sh_degree"],
        render_mode="RGB+ED",
        covars=arguments.get("covars"),
        backend=backend,
    )
    weights = torch.rand(image.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    loss = (image[..., :3] * weights[..., :3]).sum() + (alpha[..., 0] * weights[..., 3]).sum()
    loss.backward()
    out = {"colors": image[..., :3], "alphas": alpha, "depths": image[..., 3:] * alpha}  # accumulated depth
    out |= {f"grad {name}": leaf.grad for name, leaf in leaves.items()}
    return {k: v.detach().cpu() for k, v in out.items()}


def check_rasterize(device: torch.device, gsplat_ok: bool, quick: bool, report: Report) -> None:
    print("1. rasterize: the torch backend on the CPU is the reference", flush=True)
    backends = [("torch", device)] + ([("gsplat", device)] if gsplat_ok else [])
    scenes = []
    n, width, height = (300, 48, 32) if quick else (3000, 160, 112)
    for sh_degree in range(4):
        for covars in (False, True):
            scenes.append(
                (
                    f"random, SH {sh_degree}, 3 cameras, {'covars' if covars else 'quats+scales'}",
                    random_scene(n, 3, sh_degree, seed=sh_degree, width=width, height=height),
                    covars,
                )
            )
    size = 32 if quick else 256
    paper_scene = pixel_aligned_scene(size=size, views=2, per_pixel=3)
    scenes.append(
        (
            f"paper scale: {paper_scene.means.shape[0]:,} Gaussians, 1 view {size}^2",
            {
                "means": paper_scene.means,
                "quats": paper_scene.quats,
                "scales": paper_scene.scales,
                "opacities": paper_scene.opacities,
                "colors": paper_scene.sh,
                "viewmats": torch.linalg.inv(orbit_c2w(paper_scene, 1)),
                "Ks": paper_scene.K[None].clone(),
                "width": size,
                "height": size,
                "sh_degree": 3,
            },
            False,
        )
    )
    for name, scene, covars in scenes:
        reference = render_with_gradients(scene, covars, torch.device("cpu"), "torch", seed=1)
        for backend, on in backends:
            result = render_with_gradients(scene, covars, on, backend, seed=1)
            for field, value in result.items():
                report.check("rasterize", f"{backend}/{on.type} {field}: {name}", difference(value, reference[field]))


# 2. The encoder.


@contextmanager
def cpu_routes_counted():
    """Counts the calls in which ``fast_routes.layers`` takes its CPU-only route (oneDNN linear, Fourier conv)."""
    original = fast_layers._on_cpu_float32
    taken = [0]

    def counting(x):
        result = original(x)
        taken[0] += int(result)
        return result

    fast_layers._on_cpu_float32 = counting
    try:
        yield taken
    finally:
        fast_layers._on_cpu_float32 = original


def make_encoder(quick: bool, seed: int = 0) -> PixelSplatEncoder:
    torch.manual_seed(seed)
    return PixelSplatEncoder(tiny() if quick else paper()).eval()


def check_encoder(device: torch.device, quick: bool, report: Report) -> None:
    print("2. encoder: deterministic Gaussians on the device against the CPU's", flush=True)
    size = 64 if quick else 256
    encoder = make_encoder(quick)
    context = as_views(example_inputs(size, 2))
    with torch.no_grad():
        reference = encoder.encode(context, deterministic=True)
        encoder = encoder.to(device)
        with cpu_routes_counted() as taken:
            result = encoder.encode(context.to(device), deterministic=True)
    for field in ("means", "covariances", "opacities", "harmonics"):
        report.check(
            "encoder",
            f"{device.type} {field}, {'tiny' if quick else 'paper'} 2 x {size}^2",
            difference(getattr(result, field), getattr(reference, field)),
        )
    if device.type == "cpu":
        report.note(f"CPU-only routes taken on the CPU: {taken[0]} calls (expected: some)")
    else:
        report.check("encoder", f"CPU-only routes taken on {device.type} (calls)", float(taken[0]), tolerance=0.0)


# 3. Timings.


@contextmanager
def precision(mode: str, device: torch.device):
    """float32 (TF32 off), TF32 matmuls and convolutions, or bf16 autocast."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if mode == "bf16" else nullcontext()
    try:
        with autocast:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def training_batch(batch_size: int, size: int, device: torch.device) -> dict:
    """A batch like the chunk dataset's: 2 context and 4 target views per scene (random images)."""
    scenes = []
    for i in range(batch_size):
        inputs = example_inputs(size, 6, seed=i)
        scenes.append(as_views(inputs))
    views = Views(*(None if parts[0] is None else torch.cat(parts) for parts in zip(*scenes)))  # [b, 6, ...]
    views = views.to(device)
    return {"context": views.select((slice(None), slice(0, 2))), "target": views.select((slice(None), slice(2, None)))}


def timings(device: torch.device, gsplat_ok: bool, quick: bool, repeats: int, report: Report) -> None:
    print("3. timings (fastest of several after warm-up, synchronized)", flush=True)
    size = 64 if quick else 256
    modes = ["fp32", "tf32", "bf16"] if device.type == "cuda" else ["fp32", "bf16"]
    warmup = 1 if quick else 2
    encoder = make_encoder(quick).to(device)
    context = as_views(example_inputs(size, 2)).to(device)
    with torch.no_grad():
        exact = encoder.encode(context, deterministic=True)
        for mode in modes:
            with precision(mode, device):
                seconds = fastest(lambda: encoder.encode(context), device, warmup, repeats)
                reduced = encoder.encode(context, deterministic=True)
            error = max(
                difference(getattr(reduced, f).float(), getattr(exact, f))
                for f in ("means", "covariances", "opacities", "harmonics")
            )
            report.timing(f"encode 2 x {size}^2, {mode}", seconds, paper_s=PAPER["encode_s"], gaussians_error=error)
            if mode != "fp32":
                report.check(
                    "precision",
                    f"encode {mode}: Gaussians against float32",
                    error,
                    REDUCED_PRECISION_TOLERANCE,
                    required=False,
                )

        gaussians = encoder.encode(context)
        target = context.select((slice(None), slice(0, 1)))
        extrinsics, intrinsics, near = target.extrinsics, target.intrinsics, target.near
        for backend in (["gsplat"] if gsplat_ok else []) + ["torch"]:

            def draw(backend=backend):  # called in this iteration only
                viewmats, Ks = to_gsplat(extrinsics[0], intrinsics[0], size, size)
                return rasterize(
                    gaussians.means[0],
                    None,
                    None,
                    gaussians.opacities[0],
                    gaussians.harmonics[0],
                    viewmats,
                    Ks,
                    size,
                    size,
                    near_plane=0.2 * float(near.min()),
                    sh_degree=3,
                    covars=gaussians.covariances[0],
                    backend=backend,
                )

            seconds = fastest(draw, device, warmup, repeats)
            report.timing(
                f"render 1 x {size}^2 ({gaussians.means.shape[1]:,} Gaussians), {backend}",
                seconds,
                paper_s=PAPER["render_s"],
            )

    lpips_model = None
    try:
        import lpips

        lpips_model = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False).to(device).eval()
        lpips_model.requires_grad_(False)
    except ImportError:
        report.note("lpips is not installed: the training step runs without its LPIPS term")
    batch_size = 1 if quick else 7
    batch = training_batch(batch_size, size, device)
    config = LossConfig(lpips_weight=0.05, lpips_start_step=0)
    for mode in modes:
        model = make_encoder(quick).to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1.5e-4)

        def step(model=model, optimizer=optimizer, mode=mode):  # called in this iteration only
            optimizer.zero_grad(set_to_none=True)
            with precision(mode, device):
                losses, _ = pretraining_loss(
                    model, batch, 0, config, lpips_model, torch.Generator(device).manual_seed(0)
                )
            sum(losses.values()).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()

        reset_peak_memory(device)
        seconds = fastest(step, device, 1, max(1, repeats // 2))
        report.timing(
            f"training step, batch {batch_size}, 2+4 views {size}^2, {mode}",
            seconds,
            peak_gb=peak_memory_gb(device),
            paper_memory_gb=PAPER["training_memory_gb"],
        )
        del model, optimizer


# 4. Two processes on one device: DistributedDataParallel.


class TrainingLoss(torch.nn.Module):
    """The encoder whose forward pass is the paper's training loss of a batch (one random generator per example,
    seeded by the step and the example's place in the global batch): in ``ns-train pixelsplat-pretrain``
    DistributedDataParallel wraps such a module, nerfstudio's ``PretrainModel``, which cannot be imported here."""

    def __init__(self, encoder: PixelSplatEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, batch: dict, step: int, rank: int) -> torch.Tensor:
        device, size = batch["context"].images.device, batch["context"].images.shape[0]
        generators = per_example_generators(step, rank * size, size, device)
        losses, _ = pretraining_loss(self.encoder, batch, step, LossConfig(lpips_weight=0.0), None, generators)
        return sum(losses.values(), torch.zeros((), device=device))


def scene_examples(count: int, size: int, first_seed: int) -> list[dict]:
    """Examples as ``ChunkDataset`` yields them (one scene's ``Views`` each, 2 context + 4 target views of
    ``size`` x ``size``, random images), for a ``DataLoader`` to batch."""
    examples = []
    for seed in range(first_seed, first_seed + count):
        views = as_views(example_inputs(size, 6, seed=seed))  # a batch of one scene: [1, 6, ...]
        scene = Views(views.images[0], views.extrinsics[0], views.intrinsics[0], views.near[0], views.far[0])
        scene = scene._replace(index=torch.arange(6))  # the DataLoader batches tensors, not None
        examples.append({"context": scene.select(slice(0, 2)), "target": scene.select(slice(2, None))})
    return examples


def batch_tensors(batch) -> list[torch.Tensor]:
    """The tensors of a batch (dicts and ``Views``, nested)."""
    if isinstance(batch, dict):
        return [t for value in batch.values() for t in batch_tensors(value)]
    if isinstance(batch, tuple):
        return [t for value in batch for t in batch_tensors(value)]
    return [batch] if isinstance(batch, torch.Tensor) else []


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).cpu()


def ddp_rank(rank: int, backend: str, device_name: str, init_method: str, quick: bool, folder: str) -> None:
    """One of the two ranks (``torch.multiprocessing`` calls it in a fresh process): DDP around the tiny
    encoder's training loss, a few Adam steps on this rank's own data from a pinned-memory ``DataLoader``.
    Writes ``rank<r>.json`` (what happened, the error's traceback if any) and ``rank<r>.pt`` (the parameters
    after DDP's start-up broadcast and after the steps) into ``folder``; never raises."""
    device = torch.device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", device.index or 0)  # both ranks on the one GPU
    size, batch_size, steps = (32, 1, 2) if quick else (256, 2, 6)
    result: dict = {"rank": rank, "backend": backend, "device": str(device), "ok": False}
    report = Path(folder) / f"rank{rank}.json"
    try:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        else:
            torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))  # two ranks share the cores
        torch.distributed.init_process_group(backend, init_method=init_method, rank=rank, world_size=2)
        torch.manual_seed(rank)  # different initial weights: DDP's broadcast of rank 0's must make them equal
        model = TrainingLoss(PixelSplatEncoder(tiny())).to(device).train()
        # NCCL sets up its communicator here, at DDP's first collective: where it refuses a duplicate GPU.
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
        start = flat_parameters(model)
        optimizer = torch.optim.Adam(ddp.parameters(), lr=1e-3)
        examples: Any = scene_examples(steps * batch_size, size, first_seed=1000 * (rank + 1))  # rank's own
        loader = torch.utils.data.DataLoader(
            examples,  # a list serves as a dataset
            batch_size=batch_size,
            num_workers=0 if quick else 1,  # quick: no worker, one interpreter fewer to start in each rank
            pin_memory=device.type == "cuda",
        )
        seconds, pinned, copy_error = [], [], 0.0
        for step, batch in enumerate(loader):
            pinned.append(all(t.is_pinned() for t in batch_tensors(batch)))
            synchronize(device)
            began = time.perf_counter()
            moved = to_device(batch, device)
            optimizer.zero_grad(set_to_none=True)
            ddp(moved, step, rank).backward()
            optimizer.step()
            synchronize(device)
            seconds.append(time.perf_counter() - began)
            pairs = zip(batch_tensors(moved), batch_tensors(batch))
            copy_error = max([copy_error] + [difference(a, b) for a, b in pairs])
        torch.save({"start": start, "end": flat_parameters(model)}, Path(folder) / f"rank{rank}.pt")
        result |= {
            "ok": True,
            "steps": len(seconds),
            "batch_size": batch_size,
            "size": size,
            "step_s": statistics.median(seconds[1:] or seconds),  # the first step warms up
            "pinned": all(pinned),
            "copy_error": copy_error,
        }
    except Exception:  # noqa: BLE001  (reported to the parent, which decides)
        result["error"] = traceback.format_exc()
    report.write_text(json.dumps(result))  # before the teardown, which may hang after a failure
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_ranks(backend: str, device: torch.device, quick: bool, deadline_s: float) -> dict:
    """Both ranks of ``ddp_rank`` in fresh processes; killed after ``deadline_s`` (a rank left waiting for a
    failed peer would wait for a collective's timeout). Returns the ranks' reports and parameters."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-ddp-") as folder:
        context = torch.multiprocessing.start_processes(
            ddp_rank,
            args=(backend, str(device), f"tcp://127.0.0.1:{free_port()}", quick, folder),
            nprocs=2,
            join=False,
            start_method="spawn",
        )
        deadline, note = time.monotonic() + deadline_s, ""
        try:
            while not context.join(timeout=1):
                if time.monotonic() > deadline:
                    for process in context.processes:
                        process.kill()
                        process.join()
                    note = f"killed after {deadline_s:.0f} s"
                    break
        except Exception as error:  # noqa: BLE001  (a rank that died without its report)
            note = f"{type(error).__name__}: {error}"
        ranks, parameters = [], []
        for rank in range(2):
            report_path, parameters_path = Path(folder) / f"rank{rank}.json", Path(folder) / f"rank{rank}.pt"
            ranks.append(
                json.loads(report_path.read_text())
                if report_path.is_file()
                else {"rank": rank, "ok": False, "error": f"no report ({note or 'exited'})"}
            )
            if parameters_path.is_file():
                parameters.append(torch.load(parameters_path))
    return {"ranks": ranks, "parameters": parameters}


def check_ddp(device: torch.device, quick: bool, report: Report) -> dict:
    """DDP with two processes on the one device: NCCL first on a GPU (most NCCL versions refuse two ranks on
    one GPU, "Duplicate GPU detected": recorded as the reason, not a failure), then gloo, with CUDA tensors on
    a GPU and CPU tensors on the CPU. Returns the JSON report's ``ddp`` entry."""
    print("4. DDP: two processes on one device, the tiny encoder's training step", flush=True)
    backends = ["nccl", "gloo"] if device.type == "cuda" else ["gloo"]
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the GPU memory this process keeps from the timings, for the ranks
    entry: dict = {"runs": [], "backend": None}
    for backend in backends:
        outcome = run_two_ranks(backend, device, quick, DDP_DEADLINE_S)
        ranks = outcome["ranks"]
        ok = all(rank["ok"] for rank in ranks)
        errors = "\n".join(rank.get("error", "") for rank in ranks)
        run = {"backend": backend, "device": str(device), "ok": ok, "ranks": ranks}
        entry["runs"].append(run)
        if not ok:
            refusal = next((line.strip() for line in errors.splitlines() if "Duplicate GPU" in line), None)
            if backend == "nccl" and refusal is None and "ncclInvalidUsage" in errors:  # without NCCL's own text
                refusal = "ncclInvalidUsage (most likely two ranks on one GPU)"
            if backend == "nccl" and refusal is not None:
                run["reason"] = refusal
                report.note(f"DDP with nccl refused: {refusal} (expected with one GPU; gloo instead)")
            else:
                run["reason"] = errors[-3000:]
                report.note(f"DDP with {backend} on {device} failed:\n{run['reason']}")
                # gloo must work; NCCL failing otherwise than on the duplicate GPU is shown, not required.
                report.check("ddp", f"{backend} on {device.type}: both ranks ran", 1.0, 0.0, required=backend == "gloo")
            continue
        first, second = outcome["parameters"]
        moved = difference(first["end"], first["start"])
        report.check(
            "ddp",
            f"{backend} on {device.type}: parameters equal across ranks after the steps",
            difference(first["end"], second["end"]),
            0.0,
        )
        report.check("ddp", f"{backend} on {device.type}: parameters moved (1: they did not)", float(moved == 0.0), 0.0)
        report.check(
            "ddp",
            f"{backend} on {device.type}: non-blocking copies equal the loader's batches",
            max(rank["copy_error"] for rank in ranks),
            0.0,
        )
        pinned = all(rank["pinned"] for rank in ranks)
        if device.type == "cuda":
            report.check(
                "ddp", f"{backend}: DataLoader(pin_memory=True) batches pinned (1: not)", float(not pinned), 0.0
            )
        step_s = max(rank["step_s"] for rank in ranks)
        report.timing(
            f"DDP step, 2 ranks on 1 {device.type}, {backend}, tiny {ranks[0]['size']}^2",
            step_s,
            batch_per_rank=ranks[0]["batch_size"],
        )
        run |= {"parameters_moved": moved, "pinned": pinned if device.type == "cuda" else None, "step_s": step_s}
        entry["backend"] = entry["backend"] or backend
    return entry


def environment(device: torch.device) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("OUT", "outputs/gpu_check")),
        help="folder for gpu_check.json (default: $OUT, else outputs/gpu_check)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and the tiny encoder (the CPU test)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per timing; the fastest is reported")
    parser.add_argument("--fallback-gsplat-wheel", default=None, help="tried when gsplat does not compile")
    args = parser.parse_args()
    device = torch.device(args.device)
    report = Report()
    result: dict = {"environment": environment(device), "quick": args.quick}
    print(json.dumps(result["environment"]), flush=True)
    start = time.perf_counter()
    gsplat_ok = False
    if device.type == "cuda":
        result["gsplat"] = prepare_gsplat(args.fallback_gsplat_wheel, report)
        gsplat_ok = result["gsplat"]["ok"]
    else:
        report.note("gsplat is left out on the CPU (it needs CUDA tensors)")

    def ddp_section() -> None:
        result["ddp"] = check_ddp(device, args.quick, report)

    for section in (
        lambda: check_rasterize(device, gsplat_ok, args.quick, report),
        lambda: check_encoder(device, args.quick, report),
        lambda: timings(device, gsplat_ok, args.quick, args.repeats, report),
        ddp_section,
    ):
        try:
            section()
        except Exception:  # noqa: BLE001  (one broken section must not hide the others' figures)
            report.note("a section failed:\n" + traceback.format_exc())
            report.check("section", "ran to the end", float("inf"))
    result |= {
        "checks": report.checks,
        "timings": report.timings,
        "notes": report.notes,
        "seconds": time.perf_counter() - start,
        "ok": all(row["ok"] for row in report.checks if row["required"]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    failed = [row for row in report.checks if row["required"] and not row["ok"]]
    print(
        f"{len(report.checks)} checks, {len(failed)} failed; {result['seconds']:.0f} s; report: "
        f"{args.out / 'gpu_check.json'}",
        flush=True,
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
