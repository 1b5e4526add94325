"""The NASNet training recipe: `TrainConfig` (the paper's settings per preset, from
`nasnet_tf.presets`), its optimizer and learning-rate schedule, and the mixed-precision policy.

Weight decay is Keras' *decoupled* weight decay (`optimizer(weight_decay=...)`,
`w -= lr * wd * w` each step), applied to conv and dense kernels, not to biases or batch-norm
parameters. For plain SGD this equals the paper's L2 penalty `wd/2 * |w|^2`; with momentum or
RMSProp it is the decoupled (AdamW-style) variant, since the model carries no regularizers.
"""

import dataclasses

import keras

from nasnet_tf import validators
from nasnet_tf.presets import PRESETS, get_recipe

__all__ = ["OPTIMIZERS", "SCHEDULES", "TrainConfig", "bn_momentum", "make_optimizer"]

OPTIMIZERS = ("sgd", "rmsprop")
SCHEDULES = ("cosine", "exponential", "constant")


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
        strategy: see `nasnet_tf.placement.STRATEGIES`.
        sync_batch_norm: under `tf.distribute`, batch-norm statistics over the global batch
            (the default: N replicas then compute what one device would on the global batch),
            or per replica (`False`, as the paper's workers did; cheaper, not equivalent).
            JAX's DataParallel always normalises over the global batch. `train` builds a
            genotype's model with `sync_batch_norm=True` then; a model you build and pass
            yourself keeps the batch norm it was built with.
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
        recipe = get_recipe(preset)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"Unknown TrainConfig fields {unknown}. Known: {sorted(fields)}")
        return cls(preset=preset, **{**recipe, **overrides})

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
        def positive_int_setting(name, allow_none=False):
            value = getattr(self, name)
            if not (allow_none and value is None):
                validators.positive_int(value, name)

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
        positive_int_setting("epochs")
        positive_int_setting("batch_size")
        positive_int_setting("steps_per_epoch", allow_none=True)
        positive_int_setting("keep_checkpoints")
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


def learning_rate_schedule(config, steps_per_epoch, learning_rate):
    total = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
    if config.lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            learning_rate, decay_steps=max(1, round(config.lr_decay_epochs * steps_per_epoch)),
            decay_rate=config.lr_decay_rate, staircase=True,
        )
    return learning_rate


def make_optimizer(config, steps_per_epoch, replicas):
    lr = config.learning_rate * (replicas if config.scale_batch_with_replicas else 1)
    common = dict(
        learning_rate=learning_rate_schedule(config, steps_per_epoch, lr),
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


def bn_momentum(setting, total_steps):
    """The batch-norm momentum for a run of `total_steps`: `setting` if given, else ("auto")
    NASNet's 0.9997 for long runs and, for short ones, `1 - 10 / total_steps` (at least 0.9),
    so the moving statistics that inference uses average over about a tenth of the run. With
    0.9997 a 250-step run would evaluate with statistics still ~93% at their initial values.

    Example:

    >>> bn_momentum(None, 250), bn_momentum(None, 100_000), bn_momentum(0.5, 10)
    (0.96, 0.9997, 0.5)
    """
    if setting is not None:
        return setting
    return min(0.9997, max(0.9, 1.0 - 10.0 / max(total_steps, 1)))


def dtype_policy(mixed_precision):
    if mixed_precision is False or mixed_precision is None:
        return None
    if mixed_precision is True:
        # Keras' own device list, under either backend: "gpu:0", ... where there are GPUs.
        devices = keras.distribution.list_devices()
        on_gpu = any("gpu" in d.lower() or "cuda" in d.lower() for d in devices)
        return "mixed_float16" if on_gpu else "mixed_bfloat16"
    if mixed_precision not in ("mixed_float16", "mixed_bfloat16", "float32"):
        raise ValueError(
            "`mixed_precision` must be a bool, 'mixed_float16' or 'mixed_bfloat16'. "
            f"Received: mixed_precision={mixed_precision!r}"
        )
    return mixed_precision
