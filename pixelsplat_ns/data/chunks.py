"""The RealEstate10k / ACID chunk format: ``<root>/<split>/NNNNNN.torch`` plus ``<root>/<split>/index.json``.

A chunk is ``torch.save`` of a list of scenes; each scene is a dict with ``key`` (str), ``url`` (str),
``timestamps`` (int64 [N]), ``cameras`` (float32 [N, 18], see ``cameras.py``) and ``images`` (a list of N
uint8 tensors, each the raw bytes of one JPEG frame). ``index.json`` maps each scene key to its chunk's file
name. Chunks are read one at a time (the full datasets are hundreds of GB).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int64, UInt8
from torch import Tensor

from pixelsplat_ns.core.atomic_files import tensor_bytes, write_atomically, write_text_atomically
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.torch_versions import load_tensor_file


class ChunkFormatError(InputError):
    """A chunk file or an index.json that is not in the chunk format."""


@dataclass
class ChunkScene:
    key: str
    url: str
    timestamps: Int64[Tensor, " frame"]
    cameras: Float[Tensor, "frame 18"]
    images: list[UInt8[Tensor, " _bytes"]]  # one encoded image per frame, each its own length ("_": unchecked)

    def __len__(self) -> int:
        return len(self.images)

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "url": self.url,
            "timestamps": self.timestamps,
            "cameras": self.cameras,
            "images": self.images,
        }

    @staticmethod
    def from_dict(item: object, where: str) -> "ChunkScene":
        """Validate one scene of a chunk; ``where`` names it in errors."""
        if not isinstance(item, dict):
            raise ChunkFormatError(f"{where}: expected a dict, found {type(item).__name__}")
        missing = {"key", "url", "timestamps", "cameras", "images"} - set(item)
        if missing:
            raise ChunkFormatError(f"{where}: missing fields {sorted(missing)}")
        cameras, images, timestamps = item["cameras"], item["images"], item["timestamps"]
        if not isinstance(item["key"], str):
            raise ChunkFormatError(f"{where}: 'key' must be a string")
        if not (isinstance(cameras, Tensor) and cameras.ndim == 2 and cameras.shape[1] == 18):
            raise ChunkFormatError(f"{where} ({item['key']}): 'cameras' must be a [N, 18] tensor")
        if not (isinstance(images, (list, tuple)) and all(isinstance(i, Tensor) for i in images)):
            raise ChunkFormatError(f"{where} ({item['key']}): 'images' must be a list of uint8 tensors")
        if not (isinstance(timestamps, Tensor) and timestamps.shape == (cameras.shape[0],)):
            raise ChunkFormatError(f"{where} ({item['key']}): 'timestamps' must be a [N] tensor")
        if len(images) != cameras.shape[0]:
            raise ChunkFormatError(f"{where} ({item['key']}): {len(images)} images but {cameras.shape[0]} cameras")
        return ChunkScene(item["key"], str(item["url"]), timestamps, cameras.float(), list(images))


def _load_mapped(path: Path):
    """``torch.load`` with the file memory-mapped, so that frame bytes are read only when a frame is decoded
    (training uses a few frames a scene; a resume replays whole passes without decoding). Files in torch's
    legacy (pre-zip) format cannot be mapped and are read whole."""
    try:
        return load_tensor_file(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as error:
        if "mmap" not in str(error):
            raise
        return load_tensor_file(path, map_location="cpu", weights_only=True)


def read_chunk(path: Path) -> list[ChunkScene]:
    """Load and validate one chunk file."""
    path = Path(path)
    try:
        data = _load_mapped(path)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch.load raises many types for damaged files
        raise ChunkFormatError(
            f"{path}: cannot read the chunk ({type(error).__name__}: {error}). The file is damaged or not a "
            "torch.save file; re-download or re-create it."
        ) from error
    if not isinstance(data, list):
        raise ChunkFormatError(f"{path}: a chunk must be a list of scenes, found {type(data).__name__}")
    return [ChunkScene.from_dict(item, f"{path} scene {i}") for i, item in enumerate(data)]


def write_chunk(path: Path, scenes: list[ChunkScene]) -> None:
    """Write one chunk whole or not at all (``core.atomic_files``): a reader never sees a half-written file."""
    content = [scene.to_dict() for scene in scenes]
    write_atomically(path, lambda file: torch.save(content, file), tensor_bytes(content))


def is_chunk_root(path: Path) -> bool:
    """Whether ``path`` holds a RealEstate10k-format dataset (``<split>/*.torch`` and ``<split>/index.json``)."""
    path = Path(path)
    return path.is_dir() and any(
        (path / split / "index.json").is_file() or any((path / split).glob("*.torch"))
        for split in ("train", "test")
        if (path / split).is_dir()
    )


def chunk_paths(split_dir: Path) -> list[Path]:
    """The chunk files of one split, sorted by name."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir} does not exist: expected a folder of .torch chunks")
    return sorted(path for path in split_dir.iterdir() if path.suffix == ".torch")


def read_index(split_dir: Path) -> dict[str, Path]:
    """``index.json`` of a split as {scene key: chunk path}."""
    path = Path(split_dir) / "index.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: every split needs an index.json {{scene key: chunk file}}")
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ChunkFormatError(f"{path} is not valid JSON ({error}); re-create it") from error
    if not isinstance(index, dict) or not all(isinstance(v, str) for v in index.values()):
        raise ChunkFormatError(f"{path} must be a JSON object mapping scene keys to chunk file names")
    return {key: path.parent / name for key, name in index.items()}


def existing_chunk_files(split_dir: Path, overwrite: bool) -> list[Path]:
    """The chunk and index files already in ``split_dir``; an error if there are any and not ``overwrite``."""
    existing = [p for p in Path(split_dir).glob("*") if p.suffix == ".torch" or p.name == "index.json"]
    if existing and not overwrite:
        raise FileExistsError(
            f"{split_dir} already holds {len(existing)} chunk/index files; choose another output folder or pass "
            "--overwrite to replace them"
        )
    return existing


class ChunkWriter:
    """Packs scenes into numbered chunks of about ``max_chunk_bytes`` and writes index.json on close.

    Refuses a split folder that already holds chunks or an index unless ``overwrite`` is set; with it, only
    the folder's ``.torch`` files and ``index.json`` are deleted.
    """

    def __init__(self, split_dir: Path, max_chunk_bytes: int = 100_000_000, overwrite: bool = False) -> None:
        self.split_dir = Path(split_dir)
        for path in existing_chunk_files(self.split_dir, overwrite):
            path.unlink()
        self.split_dir.mkdir(parents=True, exist_ok=True)
        self.max_chunk_bytes = max_chunk_bytes
        self.index: dict[str, str] = {}
        self.pending: list[ChunkScene] = []
        self.pending_bytes = 0
        self.chunk_count = 0

    def add(self, scene: ChunkScene) -> None:
        if scene.key in self.index or any(s.key == scene.key for s in self.pending):
            raise ValueError(f"duplicate scene key {scene.key!r}: keys must be unique within a split")
        self.pending.append(scene)
        self.pending_bytes += sum(image.numel() for image in scene.images)
        if self.pending_bytes >= self.max_chunk_bytes:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        name = f"{self.chunk_count:06d}.torch"
        write_chunk(self.split_dir / name, self.pending)
        self.index.update({scene.key: name for scene in self.pending})
        self.chunk_count += 1
        self.pending, self.pending_bytes = [], 0

    def close(self) -> None:
        self.flush()
        write_text_atomically(self.split_dir / "index.json", json.dumps(self.index, indent=1))

    def __enter__(self) -> "ChunkWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
