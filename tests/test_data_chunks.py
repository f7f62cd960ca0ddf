"""Chunk files and index.json: round trip, damaged files, refusal to overwrite."""

import json

import pytest
import torch

from helpers.chunks import plain_scene, write_split
from pixelsplat_ns.data import ChunkFormatError, ChunkWriter, read_chunk, read_index
from pixelsplat_ns.data.chunks import write_chunk

pytestmark = pytest.mark.smoke  # also run in the nerfstudio user's environment (CI's second run)


def test_chunks_read_back_identically(tmp_path):
    scenes = [plain_scene("a", 5), plain_scene("bb", 3), plain_scene("ccc", 4)]
    write_split(tmp_path, "train", [scenes[:2], scenes[2:]])
    index = read_index(tmp_path / "train")
    assert {k: p.name for k, p in index.items()} == {"a": "000000.torch", "bb": "000000.torch", "ccc": "000001.torch"}
    loaded = read_chunk(tmp_path / "train" / "000000.torch") + read_chunk(tmp_path / "train" / "000001.torch")
    for original, back in zip(scenes, loaded, strict=True):
        assert (back.key, back.url) == (original.key, original.url)
        assert torch.equal(back.timestamps, original.timestamps) and back.timestamps.dtype == torch.int64
        assert torch.equal(back.cameras, original.cameras) and back.cameras.dtype == torch.float32
        assert len(back.images) == len(original.images)
        assert all(torch.equal(a, b) and a.dtype == torch.uint8 for a, b in zip(back.images, original.images))
    # The file is the official layout: a plain list of dicts.
    raw = torch.load(tmp_path / "train" / "000001.torch", weights_only=True)
    assert isinstance(raw, list) and set(raw[0]) == {"key", "url", "timestamps", "cameras", "images"}


def test_writer_packs_by_size_and_rejects_duplicates(tmp_path):
    scene = plain_scene("x", 4)
    size = sum(i.numel() for i in scene.images)
    with ChunkWriter(tmp_path / "test", max_chunk_bytes=2 * size) as writer:
        for key in "abcde":
            writer.add(plain_scene(key, 4))
        with pytest.raises(ValueError, match="duplicate scene key 'a'"):
            writer.add(plain_scene("a", 4))
    assert sorted(p.name for p in (tmp_path / "test").glob("*.torch")) == [
        "000000.torch",
        "000001.torch",
        "000002.torch",
    ]


def test_writer_never_replaces_existing_output_without_flag(tmp_path):
    write_split(tmp_path, "test", [[plain_scene("old", 3)]])
    before = (tmp_path / "test" / "000000.torch").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        ChunkWriter(tmp_path / "test")
    assert (tmp_path / "test" / "000000.torch").read_bytes() == before
    (tmp_path / "test" / "notes.txt").write_text("mine")
    with ChunkWriter(tmp_path / "test", overwrite=True) as writer:
        writer.add(plain_scene("new", 3))
    assert list(read_index(tmp_path / "test")) == ["new"]
    assert (tmp_path / "test" / "notes.txt").read_text() == "mine"


def test_corrupt_chunk_gives_a_clear_error(tmp_path):
    path = tmp_path / "000000.torch"
    write_chunk(path, [plain_scene("a", 3)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ChunkFormatError, match=r"000000\.torch: cannot read the chunk .*damaged"):
        read_chunk(path)
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(ChunkFormatError, match="cannot read the chunk"):
        read_chunk(path)


def test_malformed_chunk_content_is_named(tmp_path):
    path = tmp_path / "bad.torch"
    torch.save({"key": "a"}, path)
    with pytest.raises(ChunkFormatError, match="must be a list of scenes"):
        read_chunk(path)
    scene = plain_scene("a", 3).to_dict()
    scene["cameras"] = scene["cameras"][:, :12]
    torch.save([scene], path)
    with pytest.raises(ChunkFormatError, match=r"scene 0 \(a\): 'cameras' must be a \[N, 18\] tensor"):
        read_chunk(path)
    scene = plain_scene("a", 3).to_dict()
    scene["images"] = scene["images"][:2]
    torch.save([scene], path)
    with pytest.raises(ChunkFormatError, match="2 images but 3 cameras"):
        read_chunk(path)


def test_invalid_index_json_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="index.json does not exist"):
        read_index(tmp_path)
    (tmp_path / "index.json").write_text('{"a": "000000.torch",')
    with pytest.raises(ChunkFormatError, match="index.json is not valid JSON"):
        read_index(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"a": 3}))
    with pytest.raises(ChunkFormatError, match="mapping scene keys to chunk file names"):
        read_index(tmp_path)


def test_chunks_in_torch_legacy_format_read_back_too(tmp_path):
    """Chunks are memory-mapped when torch can map them; files saved in torch's pre-zip format cannot be, and
    are read whole."""
    scenes = [plain_scene("a", 3), plain_scene("b", 4)]
    write_chunk(tmp_path / "zip.torch", scenes)
    legacy = tmp_path / "legacy.torch"
    torch.save(torch.load(tmp_path / "zip.torch", weights_only=True), legacy, _use_new_zipfile_serialization=False)
    for path in (tmp_path / "zip.torch", legacy):
        loaded = read_chunk(path)
        assert [s.key for s in loaded] == ["a", "b"]
        assert all(torch.equal(x, y) for s, t in zip(scenes, loaded) for x, y in zip(s.images, t.images))
