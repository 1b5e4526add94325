"""The NASNet training recipe: `train(genotype_or_model, data, config, output_dir)`.

Defaults follow the NASNet paper for each preset: auxiliary head loss weight 0.4, label
smoothing 0.1, ScheduledDropPath driven by training progress, cosine (CIFAR) or exponential
(ImageNet) learning-rate decay, SGD with Nesterov momentum (CIFAR) or RMSProp (ImageNet),
weight decay, gradient clipping, optional parameter moving average (EMA); mixed precision and
XLA as switches; data-parallel over the local devices (`nasnet_tf.distribute`).

Crash safety: at every epoch end the model weights, the optimizer state (its iteration count
drives the learning-rate schedule and the drop-path progress), the random-generator states and
the epoch are checkpointed, each file written whole (temp file + `os.replace`) with a SHA-256
sidecar. Run `train` again with the same `output_dir` and it resumes after the last finished
epoch, saying so; with an `ImageDataset` the resumed epochs see exactly the batches an
uninterrupted run would. The last `keep_checkpoints` checkpoints are kept: one that is damaged
(truncated by a full disk, a cut-short copy, a sync tool) is set aside as `*.corrupt` and the
run resumes from the one before, with a warning; with none usable, `CheckpointError`.

Weight decay is Keras' *decoupled* weight decay (`optimizer(weight_decay=...)`,
`w -= lr * wd * w` each step), applied to conv and dense kernels, not to biases or batch-norm
parameters. For plain SGD this equals the paper's L2 penalty `wd/2 * |w|^2`; with momentum or
RMSProp it is the decoupled (AdamW-style) variant, since the model carries no regularizers.
"""

import dataclasses
import json
import logging
import pathlib
import re

import keras
import numpy as np
from keras import ops

from nasnet_tf import distribute
from nasnet_tf.builder import build_nasnet
from nasnet_tf.cell import DropPathScheduler, NASNetCell
from nasnet_tf.io_utils import (
    CorruptFileError,
    atomic_save,
    check_file,
    checksum_path,
    read_json,
    set_aside,
    write_json,
)
from nasnet_tf.presets import PRESETS

__all__ = ["TrainConfig", "train", "LabelSmoothingCrossentropy", "EpochCheckpoint",
           "CheckpointError", "latest_checkpoint"]

logger = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "rmsprop")
SCHEDULES = ("cosine", "exponential", "constant")
CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.json"
# Fields that may change between a run and its resumption (they do not change the maths).
_RESUMABLE_CHANGES = ("verbose", "tensorboard", "strategy", "jit_compile", "run_eagerly",
                      "keep_checkpoints")

# Recipe defaults per preset. CIFAR: slim's cifar settings (600 epochs at batch 32, SGD
# momentum 0.9, lr 0.025 cosine, weight decay 5e-4). ImageNet (mobile, large): the
# Inception-style RMSProp recipe the paper trains with (decay 0.9, epsilon 1.0, exponential
# decay 0.94 every 2 epochs, weight decay 4e-5, parameter moving average 0.9999).
_PRESET_RECIPES = {
    "cifar": dict(
        epochs=600, batch_size=32, optimizer="sgd", learning_rate=0.025, momentum=0.9,
        nesterov=True, lr_schedule="cosine", weight_decay=5e-4, clipnorm=5.0, ema=False,
    ),
    "mobile": dict(
        epochs=312, batch_size=32, optimizer="rmsprop", learning_rate=0.04, momentum=0.9,
        rmsprop_rho=0.9, rmsprop_epsilon=1.0, lr_schedule="exponential", lr_decay_rate=0.94,
        lr_decay_epochs=2.0, weight_decay=4e-5, clipnorm=10.0, ema=True,
    ),
    "large": dict(
        epochs=312, batch_size=16, optimizer="rmsprop", learning_rate=0.04, momentum=0.9,
        rmsprop_rho=0.9, rmsprop_epsilon=1.0, lr_schedule="exponential", lr_decay_rate=0.94,
        lr_decay_epochs=2.0, weight_decay=4e-5, clipnorm=10.0, ema=True,
    ),
}


@dataclasses.dataclass
class TrainConfig:
    """Settings of a training run. `TrainConfig.for_preset(name, **overrides)` gives the
    paper's defaults for `"cifar"`, `"mobile"` or `"large"`.

    Args:
        preset: the `nasnet_tf.PRESETS` layout a genotype is built with.
        model_kwargs: extra `build_nasnet` arguments (e.g. `num_cells`, `penultimate_filters`).
        epochs: total epochs of the run.
        batch_size: batch per replica; the global batch is `batch_size x replicas` (with
            `scale_batch_with_replicas`, the default) or `batch_size` itself (which must then
            divide across replicas).
        scale_batch_with_replicas: see `batch_size`; the learning rate is scaled linearly
            with the replicas too.
        steps_per_epoch: cap on the training steps per epoch (`None`: the whole train split).
        optimizer: `"sgd"` (momentum, Nesterov) or `"rmsprop"`.
        learning_rate: initial learning rate for one replica's batch.
        momentum, nesterov: SGD/RMSProp momentum; Nesterov for SGD.
        rmsprop_rho, rmsprop_epsilon: RMSProp decay and epsilon.
        lr_schedule: `"cosine"` (to 0 over the run), `"exponential"` (staircase, by
            `lr_decay_rate` every `lr_decay_epochs`) or `"constant"`.
        weight_decay: decoupled weight decay on kernels (see the module docstring).
        clipnorm: per-variable gradient norm clip (`None` disables).
        label_smoothing: label smoothing of the cross-entropy.
        aux_loss_weight: weight of the auxiliary head's loss.
        drop_path: drive ScheduledDropPath's progress from 0 to 1 over the run.
        ema: keep an exponential moving average of the weights (swapped in at the end).
        ema_momentum: its momentum.
        mixed_precision: `False`, `True` (`"mixed_float16"` on GPU, `"mixed_bfloat16"`
            otherwise) or a Keras dtype policy name; needs the model built by `train`.
        jit_compile: XLA: `True`, `False` or `"auto"` (Keras' choice).
        run_eagerly: run `fit` step by step without compiling a graph (debugging; for a few
            steps of a tiny model it is also quicker than tracing one).
        strategy: see `nasnet_tf.distribute.STRATEGIES`.
        sync_batch_norm: under `tf.distribute`, batch-norm statistics over the global batch
            (the default: N replicas then compute what one device would on the global batch),
            or per replica (`False`, as the paper's workers did; cheaper, not equivalent).
            JAX's DataParallel always normalises over the global batch.
        seed: seed of the weights' initialisation, drop path and dropout noise.
        tensorboard: write TensorBoard logs to `output_dir/logs`.
        verbose: Keras' `fit` verbosity (1: progress bar); when nonzero, `train` also prints
            the epoch it resumes from (else it logs it at INFO level).
        keep_checkpoints: how many epoch-end checkpoints are kept (the newest), so that a
            damaged newest one can be fallen back from.

    Example:

    >>> config = TrainConfig.for_preset("cifar", epochs=2)
    >>> config.optimizer, config.lr_schedule, config.label_smoothing
    ('sgd', 'cosine', 0.1)
    """

    preset: str = "cifar"
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    epochs: int = 600
    batch_size: int = 32
    scale_batch_with_replicas: bool = True
    steps_per_epoch: int | None = None
    optimizer: str = "sgd"
    learning_rate: float = 0.025
    momentum: float = 0.9
    nesterov: bool = True
    rmsprop_rho: float = 0.9
    rmsprop_epsilon: float = 1.0
    lr_schedule: str = "cosine"
    lr_decay_rate: float = 0.94
    lr_decay_epochs: float = 2.0
    weight_decay: float = 5e-4
    clipnorm: float | None = 5.0
    label_smoothing: float = 0.1
    aux_loss_weight: float = 0.4
    drop_path: bool = True
    ema: bool = False
    ema_momentum: float = 0.9999
    mixed_precision: bool | str = False
    jit_compile: bool | str = "auto"
    run_eagerly: bool = False
    strategy: object = "auto"
    sync_batch_norm: bool = True
    seed: int = 0
    tensorboard: bool = True
    verbose: int | str = 1
    keep_checkpoints: int = 2

    @classmethod
    def for_preset(cls, preset, **overrides):
        """The paper's recipe for `preset`, with `overrides` applied."""
        if preset not in _PRESET_RECIPES:
            raise ValueError(f"Unknown preset {preset!r}. Known presets: {sorted(PRESETS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"Unknown TrainConfig fields {unknown}. Known: {sorted(fields)}")
        return cls(preset=preset, **{**_PRESET_RECIPES[preset], **overrides})

    def to_dict(self):
        out = dataclasses.asdict(self)
        if not isinstance(self.strategy, str):
            out["strategy"] = type(self.strategy).__name__
        return out

    @classmethod
    def from_dict(cls, config):
        return cls(**config)

    def validate(self):
        """Raises `ValueError` naming the first bad setting."""
        def positive_int(name, allow_none=False):
            value = getattr(self, name)
            if allow_none and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")

        def number(name, low, high, allow_none=False, low_open=False):
            value = getattr(self, name)
            if allow_none and value is None:
                return
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and (value > low if low_open else value >= low) and value <= high
            if not ok:
                raise ValueError(
                    f"`{name}` must be a number in {'(' if low_open else '['}{low}, {high}]. "
                    f"Received: {name}={value!r}"
                )

        if self.preset not in PRESETS:
            raise ValueError(f"Unknown preset {self.preset!r}. Known presets: {sorted(PRESETS)}")
        positive_int("epochs")
        positive_int("batch_size")
        positive_int("steps_per_epoch", allow_none=True)
        positive_int("keep_checkpoints")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"`optimizer` must be one of {list(OPTIMIZERS)}. Received: {self.optimizer!r}"
            )
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(
                f"`lr_schedule` must be one of {list(SCHEDULES)}. "
                f"Received: lr_schedule={self.lr_schedule!r}"
            )
        number("learning_rate", 0, 10, low_open=True)
        number("momentum", 0, 1)
        number("rmsprop_rho", 0, 1)
        number("rmsprop_epsilon", 0, 10, low_open=True)
        number("lr_decay_rate", 0, 1, low_open=True)
        number("lr_decay_epochs", 0, 1e6, low_open=True)
        number("weight_decay", 0, 1)
        number("clipnorm", 0, 1e9, allow_none=True, low_open=True)
        number("label_smoothing", 0, 1)
        number("aux_loss_weight", 0, 1e3)
        number("ema_momentum", 0, 1)
        if not isinstance(self.model_kwargs, dict):
            raise ValueError(f"`model_kwargs` must be a dict. Received: {self.model_kwargs!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be an integer >= 0. Received: seed={self.seed!r}")
        if self.jit_compile not in (True, False, "auto"):
            raise ValueError(
                "`jit_compile` must be True, False or 'auto'. "
                f"Received: jit_compile={self.jit_compile!r}"
            )


@keras.saving.register_keras_serializable(package="nasnet_tf")
class LabelSmoothingCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing that takes integer labels (or one-hot).

    Keras' `CategoricalCrossentropy(label_smoothing=...)` needs one-hot labels; this loss
    one-hots integer labels first, so the same pipelines serve training and evaluation.

    Args:
        label_smoothing: in [0, 1]; targets become `(1 - s) * onehot + s / classes`.
        from_logits: whether predictions are logits rather than probabilities.

    Example:

    >>> loss = LabelSmoothingCrossentropy(0.1)
    >>> round(float(loss(np.array([0]), np.array([[0.9, 0.1]]))), 4)
    0.1553
    """

    def __init__(self, label_smoothing=0.1, from_logits=False,
                 name="label_smoothing_crossentropy", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1]. Received: label_smoothing={label_smoothing}"
            )
        self.label_smoothing = label_smoothing
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        classes = y_pred.shape[-1]
        if len(y_true.shape) < len(y_pred.shape) or (y_true.shape[-1] == 1 and classes != 1):
            labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
            y_true = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            ops.cast(y_true, y_pred.dtype), y_pred, from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing, from_logits=self.from_logits)
        return config


# -- checkpoints: written whole, checked when read ------------------------------------------------
class CheckpointError(CorruptFileError):
    """A run cannot be resumed: no checkpoint left in its `output_dir` is usable.

    A `ValueError` (through `nasnet_tf.io_utils.CorruptFileError`) whose message is one line
    naming the newest damaged file and the way out. Nothing was renamed or deleted.
    """


_EPOCH_FILE = re.compile(r"^epoch-(\d+)\.(weights\.h5|state\.json)$")


def _weights_name(epoch):
    return f"epoch-{epoch:05d}.weights.h5"


def _state_name(epoch):
    return f"epoch-{epoch:05d}.state.json"


def _seed_states(model):
    # Seed-generator states (drop path, dropout) are not in `save_weights`; keep them so a
    # resumed run draws the noise an uninterrupted one would.
    return [v for v in model.variables if "seed_generator_state" in v.path]


def _epoch_files(directory):
    """`{epoch: {"weights": path, "state": path}}` of the checkpoint files in `directory`."""
    found = {}
    if directory.is_dir():
        for path in directory.iterdir():
            match = _EPOCH_FILE.match(path.name)
            if match:
                kind = "weights" if match[2] == "weights.h5" else "state"
                found.setdefault(int(match[1]), {})[kind] = path
    return found


def _read_state(path):
    state = read_json(path)
    if not (isinstance(state, dict) and isinstance(state.get("epoch"), int)
            and isinstance(state.get("weights"), str)):
        raise CorruptFileError(
            f"{str(path)!r} does not hold a checkpoint state (an `epoch` and a `weights` file)."
        )
    return state


def _first_line(error):
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


@dataclasses.dataclass
class _Checkpoint:
    """A checkpoint found on disk: its state (`None` when unusable) and its damaged files, each
    `(path, reason)`; a reason of `None` marks a file set aside with a damaged one."""

    epoch: int | None
    state: dict | None = None
    state_path: pathlib.Path | None = None
    weights: pathlib.Path | None = None
    damage: list = dataclasses.field(default_factory=list)

    def reject(self, path, reason):
        """Marks the checkpoint unusable: `path` is damaged, its other files go aside with it."""
        self.damage.append((path, reason))
        for companion in (self.weights, self.state_path):
            listed = any(companion == p for p, _ in self.damage)
            if companion is not None and companion.exists() and not listed:
                self.damage.append((companion, None))
        self.state = None


def _scan(directory):
    """The finished epochs' checkpoints in `directory`, newest first, each with its state read
    and its weights file checked (not loaded). A damaged `state.json` comes first, as an entry
    without a state; a weights file without a state (a kill before its state was written)
    belongs to no finished epoch and is not listed."""
    files = _epoch_files(directory)
    pointer_path = directory / STATE_FILE
    pointer, found = None, []
    if pointer_path.exists():
        try:
            pointer = _read_state(pointer_path)
        except CorruptFileError as e:
            found.append(_Checkpoint(None, damage=[(pointer_path, str(e))]))
    epochs = {epoch for epoch, kinds in files.items() if "state" in kinds}
    # `state.json` is a copy of the newest state: what runs from before per-epoch states
    # have, and a spare for a damaged `epoch-N.state.json`.
    if pointer is not None and (not epochs or pointer["epoch"] in epochs):
        epochs.add(pointer["epoch"])
    for epoch in sorted(epochs, reverse=True):
        checkpoint = _Checkpoint(epoch, state_path=files.get(epoch, {}).get("state"))
        if checkpoint.state_path is not None:
            try:
                checkpoint.state = _read_state(checkpoint.state_path)
            except CorruptFileError as e:
                checkpoint.damage.append((checkpoint.state_path, str(e)))
        if checkpoint.state is None and pointer is not None and pointer["epoch"] == epoch:
            checkpoint.state = pointer
        if checkpoint.state is not None:
            checkpoint.weights = directory / pathlib.Path(checkpoint.state["weights"]).name
            try:
                check_file(checkpoint.weights,
                           expected_sha256=checkpoint.state.get("weights_sha256"))
            except CorruptFileError as e:
                checkpoint.reject(checkpoint.weights, str(e))
        found.append(checkpoint)
    return found


def _public_state(checkpoint):
    return {**checkpoint.state, "weights": str(checkpoint.weights)}


def _unusable(output_dir, checkpoints):
    """The one-line `CheckpointError` for a run whose checkpoints are all damaged."""
    damage = [(path, reason) for c in checkpoints for path, reason in c.damage if reason]
    path, reason = damage[0]
    others = ", ".join(repr(p.name) for p, _ in damage[1:])
    others = f" (also damaged: {others})" if others else ""
    return CheckpointError(
        f"Cannot resume the training run in {str(output_dir)!r}: {reason} No earlier "
        f"checkpoint is usable{others}. Nothing was changed. To start afresh, pass --overwrite "
        f"or delete {str(path.parent)!r}."
    )


def latest_checkpoint(output_dir):
    """The last finished epoch's state (`dict` with `epoch`, `weights`, `history`, ...) of a
    run in `output_dir` whose files pass their checks, or `None` if it has none.

    Reads only (damaged files are left where they are; `train` sets them aside). Raises
    `CheckpointError` when the run has checkpoints but every one is damaged.
    """
    checkpoints = _scan(pathlib.Path(output_dir) / CHECKPOINT_DIR)
    for checkpoint in checkpoints:
        if checkpoint.state is not None:
            return _public_state(checkpoint)
    if checkpoints:
        raise _unusable(output_dir, checkpoints)
    return None


def _load(model, checkpoint):
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    model.load_weights(checkpoint.weights)
    seeds = _seed_states(model)
    saved = checkpoint.state.get("seed_states") or []
    if len(saved) == len(seeds):
        for variable, value in zip(seeds, saved):
            variable.assign(np.asarray(value, dtype=variable.dtype))


def _restore(model, output_dir, checkpoints):
    """Loads the newest usable checkpoint into `model` and returns its state.

    A damaged one is set aside (`*.corrupt`, with its companion files) only once an earlier one
    has loaded, with one warning naming both; with none usable, `CheckpointError` and nothing
    renamed.
    """
    for index, checkpoint in enumerate(checkpoints):
        if checkpoint.state is None:
            continue
        try:
            _load(model, checkpoint)
        except Exception as e:
            checkpoint.reject(checkpoint.weights,
                              f"{str(checkpoint.weights)!r} cannot be loaded ({_first_line(e)}).")
            continue
        damage = [entry for c in checkpoints[:index + 1] for entry in c.damage]
        if damage:
            moved = ", ".join(repr(pathlib.Path(set_aside(p)).name) for p, _ in damage)
            reasons = " ".join(reason for _, reason in damage if reason)
            logger.warning("%s Set aside as %s; falling back to %r (epoch %d).", reasons, moved,
                           str(checkpoint.weights), checkpoint.epoch)
        return _public_state(checkpoint)
    raise _unusable(output_dir, checkpoints)


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes a resumable checkpoint at every epoch end, each file whole and checksummed.

    `output_dir/checkpoints/` holds, per kept epoch N, `epoch-NNNNN.weights.h5` (model weights
    and optimizer state) and `epoch-NNNNN.state.json` (the finished epoch count, the weights
    file and its SHA-256, the random-generator states, the metric history), each with a
    `.sha256` sidecar; `state.json` is a copy of the newest state. The weights are written
    first, the states once they are complete, then checkpoints older than the newest `keep`
    are removed. A process killed at any point leaves the previous checkpoints and maybe a
    complete new one, never a partial one; a file damaged later fails its check on resume.

    Keras' `BackupAndRestore` does the same job but writes its files in place (a kill while
    writing leaves a truncated file next to its backup) and sets the private
    `model._initial_epoch`; this callback lets `train` pass `initial_epoch` to `fit` itself.

    Args:
        output_dir: the run's directory.
        history: metric history of earlier, resumed epochs (extended here).
        config: the run's `TrainConfig` as a dict (recorded in the state).
        keep: how many of the newest checkpoints to keep (at least 1).
    """

    def __init__(self, output_dir, history=None, config=None, keep=2):
        super().__init__()
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"`keep` must be an integer >= 1. Received: keep={keep!r}")
        self.directory = pathlib.Path(output_dir) / CHECKPOINT_DIR
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.config = config
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.save(epoch + 1)

    def save(self, epochs_done, completed=False):
        self.directory.mkdir(parents=True, exist_ok=True)
        name = _weights_name(epochs_done)
        digest = atomic_save(self.directory / name, self.model.save_weights, checksum=True)
        state = {
            "epoch": epochs_done,
            "weights": name,
            "weights_sha256": digest,
            "completed": completed,
            "seed_states": [ops.convert_to_numpy(v).tolist() for v in _seed_states(self.model)],
            "history": self.history,
            "config": self.config,
        }
        write_json(self.directory / _state_name(epochs_done), state, sort_keys=True,
                   checksum=True)
        write_json(self.directory / STATE_FILE, state, sort_keys=True, checksum=True)
        for epoch, kinds in _epoch_files(self.directory).items():
            if epoch <= epochs_done - self.keep:
                for path in kinds.values():
                    path.unlink(missing_ok=True)
                    pathlib.Path(checksum_path(path)).unlink(missing_ok=True)


# -- the recipe ---------------------------------------------------------------------------------
def _schedule(config, steps_per_epoch, learning_rate):
    total = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
    if config.lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            learning_rate, decay_steps=max(1, round(config.lr_decay_epochs * steps_per_epoch)),
            decay_rate=config.lr_decay_rate, staircase=True,
        )
    return learning_rate


def _optimizer(config, steps_per_epoch, replicas):
    lr = config.learning_rate * (replicas if config.scale_batch_with_replicas else 1)
    common = dict(
        learning_rate=_schedule(config, steps_per_epoch, lr),
        weight_decay=config.weight_decay or None,
        clipnorm=config.clipnorm,
        use_ema=config.ema,
        ema_momentum=config.ema_momentum,
    )
    if config.optimizer == "sgd":
        opt = keras.optimizers.SGD(momentum=config.momentum, nesterov=config.nesterov, **common)
    else:
        opt = keras.optimizers.RMSprop(
            rho=config.rmsprop_rho, momentum=config.momentum, epsilon=config.rmsprop_epsilon,
            **common,
        )
    if config.weight_decay:
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


def _policy(mixed_precision):
    if mixed_precision is False or mixed_precision is None:
        return None
    if mixed_precision is True:
        devices = keras.distribution.list_devices() if keras.backend.backend() == "jax" else []
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        on_gpu = any("gpu" in d.lower() or "cuda" in d.lower() for d in devices)
        return "mixed_float16" if on_gpu else "mixed_bfloat16"
    if mixed_precision not in ("mixed_float16", "mixed_bfloat16", "float32"):
        raise ValueError(
            "`mixed_precision` must be a bool, 'mixed_float16' or 'mixed_bfloat16'. "
            f"Received: mixed_precision={mixed_precision!r}"
        )
    return mixed_precision


def _build(genotype, config, image_shape, classes):
    policy = _policy(config.mixed_precision)
    previous = keras.config.dtype_policy()
    keras.utils.set_random_seed(config.seed)
    kwargs = {"input_shape": tuple(image_shape), "classes": classes, "seed": config.seed,
              **config.model_kwargs}
    try:
        if policy:
            keras.config.set_dtype_policy(policy)
        return build_nasnet(genotype, preset=config.preset, **kwargs)
    finally:
        keras.config.set_dtype_policy(previous)


def _check_model(model, placement, image_shape, classes, config):
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model. Received: {model!r}")
    if tuple(model.input_shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"The data's images have shape {tuple(image_shape)} but the model takes "
            f"{tuple(model.input_shape[1:])}. Received: images of shape {tuple(image_shape)}"
        )
    out = model.output_shape[0] if isinstance(model.output_shape, list) else model.output_shape
    if classes is not None and out[-1] != classes:
        raise ValueError(
            f"The data has {classes} classes but the model predicts {out[-1]}."
        )
    if config.mixed_precision and model.dtype_policy.name == "float32":
        raise ValueError(
            "`mixed_precision` needs the model built under the policy: pass a genotype to "
            "`train` (it builds the model) or build under keras.config.set_dtype_policy."
        )
    if placement.strategy is not None:
        extended = placement.strategy.extended
        if not all(extended.variable_created_in_scope(v.value) for v in model.weights[:1]):
            raise ValueError(
                f"The model was built outside the {placement.name!r} strategy's scope. Pass a "
                "genotype to `train` (it builds the model in the scope) or build it inside "
                "`nasnet_tf.distribute.resolve_strategy(...).scope()`."
            )


def _data_spec(data):
    """(image_shape, classes, steps_per_epoch, batch) of what `train` was given."""
    from nasnet_tf.data import ImageDataset

    if isinstance(data, ImageDataset):
        return data.image_shape, data.num_classes
    if isinstance(data, tuple) and len(data) == 2:
        x, y = (np.asarray(a) for a in data)
        if x.ndim != 4:
            raise ValueError(
                "Images must be an array of shape (num_images, height, width, channels). "
                f"Received: images of shape {x.shape}"
            )
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"Labels must be 1-D integer class indices. Received: shape {y.shape}, "
                f"dtype {y.dtype}"
            )
        if len(x) != len(y):
            raise ValueError(f"{len(x)} images but {len(y)} labels.")
        return tuple(x.shape[1:]), None
    raise ValueError(
        "`data` must be a nasnet_tf.data.ImageDataset (see `load_dataset`) or an "
        f"(images, labels) tuple of arrays. Received: data={type(data).__name__}"
    )


def train(model_or_genotype=None, data=None, config=None, output_dir=None, *,
          validation_data=None, callbacks=None):
    """Trains a NASNet with the paper's recipe, resumably.

    Args:
        model_or_genotype: a `Genotype` (or its dict, or a JSON path, or `None` for NASNet-A),
            built with `config.preset`, the data's image shape and classes, and
            `config.model_kwargs`; or a built `keras.Model` (compiled here).
        data: a `nasnet_tf.data.ImageDataset` (from `load_dataset`; re-batched here to the
            global batch of `config`; exact resumption), or an
            `(images, labels)` tuple of normalised float images and integer labels (runs on
            any backend without `tf.data`; a resumed run reshuffles from its own seed).
        config: a `TrainConfig` (default `TrainConfig()`, the CIFAR recipe).
        output_dir: where checkpoints, TensorBoard logs, `history.json`, `config.json` and
            the final `model.keras` go. Run again with the same directory to resume; `None`
            trains without checkpoints.
        validation_data: validation data when `data` is a tuple of arrays.
        callbacks: extra Keras callbacks.

    Returns:
        A `keras.callbacks.History` whose `history` spans every epoch of the run (resumed
        ones included) and whose `model` is the trained model.

    Example:

    >>> from nasnet_tf.data import load_dataset
    >>> data = load_dataset("digits", batch_size=32)
    >>> config = TrainConfig(epochs=1, steps_per_epoch=2, verbose=0, tensorboard=False,
    ...                      model_kwargs=dict(num_cells=1, penultimate_filters=24))
    >>> history = train(None, data, config)
    >>> len(history.history["loss"])
    1
    """
    from nasnet_tf.data import ImageDataset

    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"`config` must be a TrainConfig. Received: config={config!r}")
    config.validate()
    if data is None:
        raise ValueError("`train` needs `data` (see `nasnet_tf.data.load_dataset`).")
    image_shape, classes = _data_spec(data)
    placement = distribute.resolve_strategy(config.strategy)
    global_batch = config.batch_size * (
        placement.num_replicas if config.scale_batch_with_replicas else 1
    )
    placement.check_batch_size(global_batch)

    if isinstance(data, ImageDataset):
        data = data.with_batch_size(global_batch)
        steps = data.steps_per_epoch
        if steps < 1:
            raise ValueError(
                f"The global batch {global_batch} exceeds the {data.train_size} training images."
            )
    else:
        steps = len(data[0]) // global_batch
        if steps < 1:
            raise ValueError(
                f"The global batch {global_batch} exceeds the {len(data[0])} training images."
            )
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)

    checkpoints = _scan(pathlib.Path(output_dir) / CHECKPOINT_DIR) if output_dir else []
    states = [c.state for c in checkpoints if c.state is not None]
    if states:
        _check_resumable(states[0], config)
    elif checkpoints:
        raise _unusable(output_dir, checkpoints)

    with placement.scope():
        if isinstance(model_or_genotype, keras.Model):
            model = model_or_genotype
        else:
            model = _build(model_or_genotype, config, image_shape, classes)
        _check_model(model, placement, image_shape, classes, config)
        if getattr(model, "auxiliary_head", False):
            model.aux_loss_weight = config.aux_loss_weight
        if config.sync_batch_norm and placement.strategy is not None:
            for layer in model._flatten_layers(include_self=False, recursive=True):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.synchronized = True
        model.compile(
            optimizer=_optimizer(config, steps, placement.num_replicas),
            loss=LabelSmoothingCrossentropy(config.label_smoothing),
            metrics=["accuracy"],
            jit_compile=config.jit_compile,
            run_eagerly=config.run_eagerly,
        )
        initial_epoch, history = 0, {}
        if checkpoints:
            state = _restore(model, output_dir, checkpoints)
            initial_epoch, history = int(state["epoch"]), state.get("history") or {}
            message = f"Resuming from epoch {initial_epoch} (checkpoint {state['weights']})"
            if config.verbose:
                print(message, flush=True)  # beside fit's own progress lines
            else:
                logger.info(message)

        cbs = list(callbacks or [])
        has_drop_path = any(
            isinstance(layer, NASNetCell) and layer.drop_path_keep_prob < 1.0
            for layer in model._flatten_layers(include_self=False, recursive=True)
        )
        if config.drop_path and has_drop_path:
            cbs.append(DropPathScheduler(config.epochs * steps))
        checkpoint = None
        if output_dir:
            out = pathlib.Path(output_dir)
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "config.json", config.to_dict(), sort_keys=True)
            checkpoint = EpochCheckpoint(out, history, config.to_dict(),
                                         keep=config.keep_checkpoints)
            cbs.append(checkpoint)
            if config.tensorboard:
                cbs.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs")))

        if isinstance(data, ImageDataset):
            fit_args = dict(
                x=data.train_epochs(initial_epoch, config.epochs, steps_per_epoch=steps),
                # Replicas each need a share of every batch: multi-replica validation leaves
                # out the last partial batch (fewer than `global_batch` images).
                validation_data=data.validation_batches(
                    drop_remainder=placement.num_replicas > 1
                ),
                shuffle=False,  # the epochs are shuffled (reproducibly) by the dataset
            )
        else:
            x, y = data
            fit_args = dict(x=np.asarray(x, "float32"), y=np.asarray(y), batch_size=global_batch,
                            shuffle=True, validation_data=validation_data)
        result = keras.callbacks.History()
        result.set_model(model)
        if initial_epoch < config.epochs:
            fit_history = model.fit(
                **fit_args, epochs=config.epochs, initial_epoch=initial_epoch,
                steps_per_epoch=steps, callbacks=cbs, verbose=config.verbose,
            )
            history = checkpoint.history if checkpoint else fit_history.history
            if checkpoint and config.ema:
                # fit swapped the moving averages in; the final checkpoint holds them.
                checkpoint.save(config.epochs, completed=True)
        result.history = history
        result.epoch = list(range(len(next(iter(history.values()), []))))
        if output_dir:
            out = pathlib.Path(output_dir)
            write_json(out / "history.json", history, sort_keys=True)
            atomic_save(out / "model.keras", model.save, checksum=True)
    return result


def _check_resumable(state, config):
    saved = state.get("config") or {}
    now = config.to_dict()
    changed = sorted(
        k for k in now if k not in _RESUMABLE_CHANGES and k in saved and saved[k] != _jsonable(
            now[k])
    )
    if changed:
        raise ValueError(
            "The output directory holds a run with other settings, so it cannot be resumed: "
            + ", ".join(f"{k}={saved[k]!r} there, {now[k]!r} now" for k in changed)
            + ". Use a new `output_dir` (or the same settings)."
        )


def _jsonable(value):
    return json.loads(json.dumps(value))
