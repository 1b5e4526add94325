"""Training across several processes (one per host) under JAX: `jax.distributed` plus a
`keras.distribution.DataParallel` layout over every process's devices.

`settings(...)` reads the process group from arguments, then the environment (JAX's and
Keras' own variable names), and checks it without importing JAX or Keras (the command line
uses it to validate its flags). `initialize(...)` joins the group: CPU collectives over gloo,
then `jax.distributed.initialize`. Afterwards `process_index()` / `process_count()` tell the
process its place and `data_parallel()` gives the layout `nasnet_tf.training.train` uses:
each process feeds its own share of every global batch (`auto_shard_dataset=False`; see
`nasnet_tf.data.ImageDataset.shard`) and JAX assembles the global batch from the shares in
process order.

Environment variables (used where the argument is `None`):

- `JAX_COORDINATOR_ADDRESS`: `HOST:PORT` of process 0's coordinator (JAX's own name).
- `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID`: the process count and
  this process's index (`keras.distribution.initialize`'s names; JAX has none).
- `NASNET_TF_HEARTBEAT_TIMEOUT`: seconds without a heartbeat after which a process counts as
  dead and the others stop with an error (JAX's `heartbeat_timeout_seconds`, default 100).
- `NASNET_TF_INITIALIZATION_TIMEOUT`: seconds to wait for every process to join (JAX's
  `initialization_timeout`, default 300).
- Under Slurm (`SLURM_NTASKS` > 1 with `SLURM_JOB_ID`, `SLURM_PROCID`,
  `SLURM_STEP_NODELIST`) or Open MPI (`OMPI_COMM_WORLD_SIZE` > 1, `OMPI_MCA_orte_hnp_uri`)
  whatever is not given is detected by JAX from the scheduler's variables.

Keras' `keras.distribution.initialize` does the same join but cannot bound the heartbeat
timeout, which is what turns a dead peer into an error instead of a hang; hence
`jax.distributed.initialize` is called directly.
"""

import contextlib
import dataclasses
import os
import sys

from nasnet_tf import validators
from nasnet_tf.io_utils import first_line

__all__ = ["ProcessGroup", "all_equal", "barrier", "data_parallel", "initialize", "is_chief",
           "outside_distribution", "parse_address", "process_count", "process_index",
           "settings"]

ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
ENV_HEARTBEAT = "NASNET_TF_HEARTBEAT_TIMEOUT"
ENV_INIT_TIMEOUT = "NASNET_TF_INITIALIZATION_TIMEOUT"
HEARTBEAT_TIMEOUT = 100
INITIALIZATION_TIMEOUT = 300
_SLURM = ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_STEP_NODELIST")


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
    """Who trains together: the coordinator, the process count and this process's index.

    A field left `None` is detected by JAX from a cluster scheduler's environment (Slurm,
    Open MPI).

    Attributes:
        coordinator: `"HOST:PORT"` where process 0 serves the coordinator, or `None`.
        num_processes: the number of processes, or `None`.
        process_id: this process's index in `[0, num_processes)`, or `None`.
        heartbeat_timeout: seconds after which a silent process counts as dead.
        initialization_timeout: seconds to wait for every process to join.
        cluster: `"slurm"` or `"ompi"` when the scheduler's environment was found, else `None`.
    """

    coordinator: str | None
    num_processes: int | None
    process_id: int | None
    heartbeat_timeout: int = HEARTBEAT_TIMEOUT
    initialization_timeout: int = INITIALIZATION_TIMEOUT
    cluster: str | None = None


def parse_address(address, name="coordinator"):
    """`(host, port)` of a `"HOST:PORT"` address (`"[::1]:1234"` for IPv6).

    Example:

    >>> parse_address("10.0.0.1:1234")
    ('10.0.0.1', 1234)
    """
    text = address if isinstance(address, str) else ""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(c.isspace() for c in text) or not port.isdigit() \
            or not 0 < int(port) < 65536:
        raise ValueError(
            f"`{name}` must be HOST:PORT with a port in 1..65535 (e.g. 10.0.0.1:1234). "
            f"Received: {name}={address!r}"
        )
    return host, int(port)


def _env_int(environ, key, minimum):
    text = environ.get(key)
    if text in (None, ""):
        return None
    try:
        value = int(text)
    except ValueError:
        value = text
    return validators.positive_int(value, key, minimum=minimum)


def _cluster(environ):
    if all(k in environ for k in _SLURM) and (_env_int(environ, "SLURM_NTASKS", 1) or 1) > 1:
        return "slurm"
    if "OMPI_MCA_orte_hnp_uri" in environ and \
            (_env_int(environ, "OMPI_COMM_WORLD_SIZE", 1) or 1) > 1:
        return "ompi"
    return None


def settings(coordinator=None, num_processes=None, process_id=None, *, heartbeat_timeout=None,
             initialization_timeout=None, environ=None):
    """The process group from the arguments, else the environment; `None` for one process.

    Imports neither JAX nor Keras. Raises `ValueError` (Keras wording) for a malformed address,
    count or index, or a group that is only partly given outside a cluster scheduler.

    Args:
        coordinator: `"HOST:PORT"` of process 0 (env `JAX_COORDINATOR_ADDRESS`).
        num_processes: the process count (env `KERAS_DISTRIBUTION_NUM_PROCESSES`).
        process_id: this process's index (env `KERAS_DISTRIBUTION_PROCESS_ID`).
        heartbeat_timeout: seconds (env `NASNET_TF_HEARTBEAT_TIMEOUT`, default 100).
        initialization_timeout: seconds (env `NASNET_TF_INITIALIZATION_TIMEOUT`, default 300).
        environ: the environment to read (default `os.environ`).

    Returns:
        A `ProcessGroup`, or `None` when nothing asks for more than one process.

    Example:

    >>> group = settings("127.0.0.1:1234", 2, 1, environ={})
    >>> group.process_id, group.num_processes
    (1, 2)
    >>> settings(environ={}) is None
    True
    """
    environ = os.environ if environ is None else environ
    if coordinator is None:
        coordinator = environ.get(ENV_COORDINATOR) or None
    if num_processes is None:
        num_processes = _env_int(environ, ENV_NUM_PROCESSES, 1)
    if process_id is None:
        process_id = _env_int(environ, ENV_PROCESS_ID, 0)
    if heartbeat_timeout is None:
        heartbeat_timeout = _env_int(environ, ENV_HEARTBEAT, 1) or HEARTBEAT_TIMEOUT
    if initialization_timeout is None:
        initialization_timeout = _env_int(environ, ENV_INIT_TIMEOUT, 1) or INITIALIZATION_TIMEOUT
    heartbeat_timeout = validators.positive_int(heartbeat_timeout, "heartbeat_timeout")
    initialization_timeout = validators.positive_int(initialization_timeout,
                                                     "initialization_timeout")
    if coordinator is not None:
        parse_address(coordinator)
    if num_processes is not None:
        num_processes = validators.positive_int(num_processes, "num_processes")
    if process_id is not None:
        process_id = validators.positive_int(process_id, "process_id", minimum=0)
        if num_processes is not None and process_id >= num_processes:
            raise ValueError(
                f"`process_id` must be in [0, num_processes={num_processes}). "
                f"Received: process_id={process_id}"
            )
    cluster = _cluster(environ)
    given = {"coordinator": coordinator, "num_processes": num_processes,
             "process_id": process_id}
    if cluster is None:
        if all(v is None for v in given.values()) or (num_processes == 1 and coordinator is None):
            return None
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise ValueError(
                "Training across processes needs the coordinator address, the process count "
                "and this process's index (flags --coordinator, --num-processes, --process-id "
                f"or env {ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, {ENV_PROCESS_ID}). "
                f"Received: {', '.join(f'{k}={v!r}' for k, v in given.items())}"
            )
    return ProcessGroup(coordinator, num_processes, process_id, heartbeat_timeout,
                        initialization_timeout, cluster)


def initialize(coordinator=None, num_processes=None, process_id=None, **kwargs):
    """Joins the process group (see `settings` for the arguments and their environment
    fallbacks); does nothing for one process. Call it before anything else uses JAX.

    Sets JAX's CPU collectives to gloo (cross-process all-reduces on CPU need it) and calls
    `jax.distributed.initialize`. Calling it again with the same group does nothing.

    Returns:
        The `ProcessGroup` joined, or `None` for one process.

    Example:

    >>> initialize(environ={}) is None  # nothing set: one process
    True
    """
    group = settings(coordinator, num_processes, process_id, **kwargs)
    if group is None:
        return None
    import keras

    if keras.backend.backend() != "jax":
        raise ValueError(
            "Training across processes runs under the JAX backend (keras.distribution); set "
            "KERAS_BACKEND=jax. Under TensorFlow, train on one machine (MirroredStrategy). "
            f"Received: backend={keras.backend.backend()!r}"
        )
    import jax

    if jax.distributed.is_initialized():
        return group
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=group.coordinator, num_processes=group.num_processes,
            process_id=group.process_id, initialization_timeout=group.initialization_timeout,
            heartbeat_timeout_seconds=group.heartbeat_timeout,
            # A survivor of a dead peer leaves after this long instead of JAX's 300 s.
            shutdown_timeout_seconds=group.heartbeat_timeout,
        )
    except Exception as e:  # jax raises RuntimeError / JaxRuntimeError / ValueError
        raise RuntimeError(
            f"Could not join the {group.num_processes or '?'} training processes at "
            f"{group.coordinator or '(detected)'} as process {group.process_id}: "
            f"{first_line(e, with_type=False)}"
        ) from None
    return group


def _jax_if_distributed():
    jax = sys.modules.get("jax")
    if jax is None or not jax.distributed.is_initialized():
        return None
    return jax


def process_count():
    """How many processes train together (1 unless `initialize` joined a group)."""
    jax = _jax_if_distributed()
    return jax.process_count() if jax else 1


def process_index():
    """This process's index among `process_count()` (0 unless in a group)."""
    jax = _jax_if_distributed()
    return jax.process_index() if jax else 0


def is_chief():
    """Whether this process writes the run's files (process 0)."""
    return process_index() == 0


def barrier(name):
    """Waits until every process reaches the barrier `name` (no-op for one process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def all_equal(value, name):
    """Raises `RuntimeError` unless every process holds the same integer `value`."""
    if process_count() == 1:
        return
    import numpy as np
    from jax.experimental import multihost_utils

    values = np.asarray(multihost_utils.process_allgather(np.asarray(int(value)))).ravel()
    if len(set(values.tolist())) > 1:
        raise RuntimeError(
            f"The training processes disagree on {name}: {values.tolist()} (by process). "
            "They must share one output directory (a shared file system)."
        )


@contextlib.contextmanager
def outside_distribution():
    """A context without the Keras distribution, for what process 0 does alone (writing
    checkpoints and the model). Keras creates throwaway variables while saving (a template
    optimizer); under a multi-process distribution each would be a collective that the other
    processes never enter, and the save would hang. The model's own weights are replicated,
    so process 0 reads them from its own devices."""
    if process_count() == 1:
        yield
        return
    import keras

    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def data_parallel():
    """`keras.distribution.DataParallel` over every process's devices, each process feeding
    its own share of the global batch (`auto_shard_dataset=False`)."""
    import jax
    import keras

    return keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False)
