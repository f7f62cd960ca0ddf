"""The parts of training in several processes that need no processes: the report of a failed one, and the
checkpoint of a model whose batch norm is synchronized (``--pipeline.sync-batch-norm``, on GPUs), loader workers
that end with their process. The launches
themselves are tests/test_ddp.py's."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from pixelsplat_ns.encoder import PixelSplatEncoder, tiny
from pixelsplat_ns.nerfstudio_compat.distributed import failed_process_report

LAUNCHER_MESSAGE = """

-- Process 1 terminated with the following error:
Traceback (most recent call last):
  File "/x/torch/multiprocessing/spawn.py", line 90, in _wrap
    fn(i, *args)
{last}
"""


def test_a_process_failing_on_its_input_is_reported_in_one_line():
    ours = LAUNCHER_MESSAGE.format(last="pixelsplat_ns.core.errors.InputError: --data x has no chunks: give one")
    assert failed_process_report(ours) == (
        "InputError (in process 1 of this machine; the others were stopped): --data x has no chunks: give one"
    )
    subclass = LAUNCHER_MESSAGE.format(last="pixelsplat_ns.core.atomic_files.CannotWrite: /x: the disk is full")
    assert failed_process_report(subclass).startswith("CannotWrite (in process 1")


def test_other_failures_keep_their_traceback():
    for last in (
        "RuntimeError: Connection closed by peer",
        "pixelsplat_ns.data.skips.SkipScene: a scene",  # ours, but not an InputError
        "pixelsplat_ns.core.errors.NoSuchError: not a class of the module",
    ):
        assert failed_process_report(LAUNCHER_MESSAGE.format(last=last)) is None, last
    assert failed_process_report("another message") is None


def test_a_synchronized_batch_norm_saves_the_same_checkpoint():
    """On GPUs the pipeline converts the encoder's batch norm to SyncBatchNorm: its checkpoint keeps every key and
    shape, so the run exports and resumes like a one-GPU run."""
    plain = PixelSplatEncoder(tiny())
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(PixelSplatEncoder(tiny()))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    state = synced.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in plain.state_dict().items()}
    plain.load_state_dict(state)


CHILD_OF_A_PARENT = """
import os, sys, time
from pixelsplat_ns.core.child_processes import die_with
parent = os.getpid()
if os.fork() == 0:
    if sys.argv[1] == "late":
        time.sleep(1.5)  # still starting (a spawned worker imports for seconds) when its parent is killed
    if sys.argv[1] != "not":
        die_with(parent)(0)
    time.sleep(30)
    os._exit(0)
print(os.getpid(), flush=True)
time.sleep(30)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
@pytest.mark.parametrize("asked", ["asked", "late", "not"])
def test_a_loader_worker_ends_with_its_killed_parent(asked):
    """A forked child that called ``die_with`` is gone once its parent is killed, also when it calls it after its
    parent died; without it (the control) it lives on."""
    started = subprocess.Popen([sys.executable, "-c", CHILD_OF_A_PARENT, asked], stdout=subprocess.PIPE, text=True)
    parent = int(started.stdout.readline())
    children = [p for p in psutil.process_iter(["ppid"]) if p.info["ppid"] == parent]
    assert len(children) == 1
    time.sleep(0.5)  # the child has made its request
    os.kill(parent, signal.SIGKILL)
    started.wait()
    gone, alive = psutil.wait_procs(children, timeout=3)
    for child in alive:
        child.kill()
    assert (gone, alive) == ((children, []) if asked != "not" else ([], children))


def test_a_second_process_chooses_its_gpu_keeps_quiet_and_serves_no_viewer(monkeypatch, tmp_path):
    """The trainer of the process of local rank 1 (global rank 3: machine 1 of 2 GPUs each) on a GPU machine: it
    makes cuda:1 the current GPU (nerfstudio's worker never does, so NCCL's barrier went to GPU 0 from every
    process), prints nothing and starts no viewer. The CUDA calls are recorded, as this machine has no GPU."""
    from nerfstudio.utils import comms
    from nerfstudio.utils.rich_utils import CONSOLE

    from pixelsplat_ns.methods import _pixelsplat_pretrain_tiny
    from pixelsplat_ns.nerfstudio_compat import trainer

    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(trainer, "check_device", lambda device: None)
    monkeypatch.setattr(comms, "get_world_size", lambda: 4)
    monkeypatch.setattr(comms, "get_rank", lambda: 3)
    monkeypatch.setattr(CONSOLE, "quiet", False)
    config = _pixelsplat_pretrain_tiny()
    config.machine.device_type, config.vis, config.output_dir = "cuda", "viewer", tmp_path
    trainer.PixelSplatTrainer(config, local_rank=1, world_size=4)
    assert chosen == [1] and CONSOLE.quiet and not config.is_viewer_enabled()


def test_a_run_resumed_in_another_number_of_processes_says_what_changes(monkeypatch, tmp_path):
    """The checkpoint records how many processes trained it; resumed in another number, the run says that the
    batch of a step and the order of the scenes change from the step it goes on at (in as many, nothing)."""
    from nerfstudio.utils.rich_utils import CONSOLE

    from pixelsplat_ns.methods import _pixelsplat_pretrain_tiny
    from pixelsplat_ns.nerfstudio_compat import trainer

    monkeypatch.setattr(CONSOLE, "quiet", False)
    config = _pixelsplat_pretrain_tiny()
    config.output_dir, config.machine.device_type = tmp_path, "cpu"
    resumed = trainer.PixelSplatTrainer(config, local_rank=0, world_size=1)
    resumed._start_step = 8
    said = {}
    for saved in ({"processes": 2}, {"processes": 1}, {}):  # {}: a checkpoint older than the key, one process
        with CONSOLE.capture() as captured:
            resumed._say_how_the_stream_goes_on({"step": 7, **saved})
        said[saved.get("processes")] = " ".join(captured.get().split())
    assert "resuming in 1 process(es) a run saved from 2: from step 8 on, a step's batch is 1 x" in said[2], said
    assert said[1] == said[None] == ""
