"""Data parallelism over every accelerator of every host, the way JAX recommends it now.

One pure step function is `jax.jit`-ed over a `Mesh` of all devices with a single axis, "data": the batch is sharded
along it (`P("data")`), parameters and optimizer state are replicated (`P()`), and XLA inserts the gradient
all-reduce. Linen BatchNorm computes its statistics over the *global* batch under jit, so a step on 8 devices equals
the same step on 1. (`jax.pmap` is in maintenance mode and is itself built on jit + shard_map.)

Multi-host: `maybe_initialize_distributed()` runs `jax.distributed.initialize()` before any device is touched; each
process feeds its slice of the global batch and `host_to_global` assembles the global `jax.Array`.
"""

import logging
import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

log = logging.getLogger(__name__)

DATA_AXIS = "data"

# Environment variables by which cluster launchers announce a multi-process job (jax.distributed autodetects them).
_CLUSTER_ENV = (
    "JAX_COORDINATOR_ADDRESS",
    "COORDINATOR_ADDRESS",
    "TPU_WORKER_HOSTNAMES",
    "MEGASCALE_COORDINATOR_ADDRESS",
    "OMPI_COMM_WORLD_SIZE",
    "SLURM_NTASKS",
)


def maybe_initialize_distributed(mode: str = "auto") -> None:
    """`jax.distributed.initialize()` on multi-host launches; call before any other use of JAX devices.

    mode: "auto" (initialise when a cluster launcher's environment is present and names more than one process),
    "on" (always) or "off".
    """
    if mode == "off":
        return
    if mode == "auto":
        hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
        many = (
            len([h for h in hosts.split(",") if h]) > 1
            or int(os.environ.get("SLURM_NTASKS", "1")) > 1
            or int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
            or any(os.environ.get(v) for v in _CLUSTER_ENV[:2] + ("MEGASCALE_COORDINATOR_ADDRESS",))
        )
        if not many:
            return
    kwargs = {}
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        kwargs = dict(
            coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]),
        )
    jax.distributed.initialize(**kwargs)
    log.info(
        "Process %d of %d, %d local devices.",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
    )


def make_mesh() -> Mesh:
    """A 1-D mesh of every device of every process, axis "data"."""
    return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def data_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension split across devices."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def local_batch_size(global_batch_size: int) -> int:
    """This process's share of a global batch, with a clear error when it does not divide."""
    devices, processes = jax.device_count(), jax.process_count()
    if global_batch_size % devices:
        raise ValueError(
            f"The global batch size {global_batch_size} must be a multiple of the number of devices ({devices}); "
            f"set config.batch_size to e.g. {max(devices, global_batch_size // devices * devices)}."
        )
    return global_batch_size // processes


def host_to_global(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles each process's local batch into global arrays sharded along "data"."""
    sharding = data_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def max_over_processes(value: int) -> int:
    if jax.process_count() == 1:
        return value
    return int(np.max(multihost_utils.process_allgather(np.asarray(value))))


def gather_from_processes(values: Any) -> np.ndarray:
    """Stacks a small host value from every process (index = process_index)."""
    if jax.process_count() == 1:
        return np.asarray(values)[None]
    return np.asarray(multihost_utils.process_allgather(np.asarray(values)))


def fetch_to_host(tree: Any) -> Any:
    """Device arrays -> numpy on every process (gathered across processes on multi-host runs)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)
