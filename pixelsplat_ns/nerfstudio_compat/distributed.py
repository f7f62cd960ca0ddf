"""Training in several processes through nerfstudio's launcher (``--machine.num-devices``,
``--machine.num-machines``): the flags checked before anything starts, the run's files and messages left to the
process of global rank 0, and a process that fails reported by its own message.

nerfstudio 1.1.5 starts one process per device (``scripts/train.py: launch``, ``torch.multiprocessing.spawn``),
NCCL between GPUs and gloo between CPUs; every machine runs the same ``ns-train`` command with its own
``--machine.machine-rank``.
"""

import importlib
import re
from typing import TYPE_CHECKING, Optional

from pixelsplat_ns.core.errors import InputError

if TYPE_CHECKING:  # nerfstudio's, imported only by the checker: error_reporting imports this module
    from nerfstudio.configs.base_config import MachineConfig

INIT_METHODS = ("tcp://", "file://", "env://")
"""The ``--machine.dist-url`` schemes torch.distributed accepts (nerfstudio adds "auto": one machine only)."""


def check_machine_flags(machine: "MachineConfig") -> None:
    """Refuse ``--machine`` flags that nerfstudio's launcher would fail on later, in an assert or a hang.
    Raises ``InputError`` naming the flag and the fix."""
    if machine.num_devices < 1 or machine.num_machines < 1:
        raise InputError(
            f"--machine.num-devices {machine.num_devices} --machine.num-machines {machine.num_machines}: both must "
            "be at least 1"
        )
    if not 0 <= machine.machine_rank < machine.num_machines:
        raise InputError(
            f"--machine.machine-rank {machine.machine_rank} is outside 0..{machine.num_machines - 1} "
            f"(--machine.num-machines {machine.num_machines}): give each machine its own rank, 0 on the machine "
            "whose address is in --machine.dist-url"
        )
    if machine.num_machines > 1 and machine.dist_url == "auto":
        raise InputError(
            f"--machine.num-machines {machine.num_machines} needs --machine.dist-url tcp://ADDRESS:PORT, the same on "
            "every machine: the address of machine 0 (reachable from the others) and a free port there"
        )
    if machine.dist_url != "auto" and not machine.dist_url.startswith(INIT_METHODS):
        raise InputError(
            f"--machine.dist-url {machine.dist_url}: give tcp://ADDRESS:PORT (or file://PATH on a shared file "
            "system, or env:// with MASTER_ADDR and MASTER_PORT set)"
        )
    if machine.num_devices * machine.num_machines > 1:
        check_the_launcher_can_start(machine)


def check_the_launcher_can_start(machine: "MachineConfig") -> None:
    """Refuse what nerfstudio 1.1.5's worker asserts once its processes have started (``_distributed_worker``):
    CUDA available, even for ``--machine.device-type cpu``, and at least ``--machine.num-devices`` GPUs. Raises
    ``InputError``."""
    import torch

    if not torch.cuda.is_available():
        raise InputError(
            f"--machine.num-devices {machine.num_devices} --machine.num-machines {machine.num_machines}: nerfstudio "
            "starts several processes only where CUDA is available (its worker asserts it, also with "
            "--machine.device-type cpu); here, train in one process (leave both flags out)"
        )
    if machine.device_type == "cuda" and machine.num_devices > torch.cuda.device_count():
        raise InputError(
            f"--machine.num-devices {machine.num_devices}, but this machine shows {torch.cuda.device_count()} GPU(s) "
            "(CUDA_VISIBLE_DEVICES chooses which): give at most that many"
        )


def writes_the_run(machine: "MachineConfig") -> bool:
    """Whether this ``ns-train`` writes the run's folder (config.yml; checkpoints and logs come from global rank
    0, which runs on machine 0): on the other machines ``ns-train`` only trains."""
    return machine.machine_rank == 0


FAILED_PROCESS = re.compile(r"-- Process (\d+) terminated with the following error:")
OUR_ERROR = re.compile(r"^(pixelsplat_ns(?:\.\w+)+)\.(\w+): (.*)$")


def failed_process_report(message: str) -> Optional[str]:
    """One line for the message of ``torch.multiprocessing``'s ``ProcessRaisedException`` (a process started by
    nerfstudio's launcher failed and the launcher stopped the others) when the process failed on an
    ``InputError`` (what it was given cannot be used): its message, as one process reports it. None for any
    other failure, which keeps its traceback."""
    found = FAILED_PROCESS.search(message)
    if found is None:
        return None
    lines = [line.strip() for line in message[found.end() :].splitlines() if line.strip()]
    ours = OUR_ERROR.match(lines[-1]) if lines else None
    if ours is None:
        return None
    module, name, text = ours.groups()
    kind = getattr(importlib.import_module(module), name, None)  # a pixelsplat_ns module: our own code
    if not (isinstance(kind, type) and issubclass(kind, InputError)):
        return None
    return f"{name} (in process {found.group(1)} of this machine; the others were stopped): {text}"
