"""`train(genotype_or_model, data, config, output_dir)`: a NASNet trained with the paper's
recipe, resumably.

Defaults follow the NASNet paper for each preset (`nasnet_tf.presets`, `nasnet_tf.recipe`):
auxiliary head loss weight 0.4, label smoothing 0.1 (`nasnet_tf.losses`), ScheduledDropPath
driven by training progress (`nasnet_tf.callbacks.DropPathScheduler`), cosine (CIFAR) or
exponential (ImageNet) learning-rate decay, SGD with Nesterov momentum (CIFAR) or RMSProp
(ImageNet), weight decay, gradient clipping, optional parameter moving average (EMA); mixed
precision and XLA as switches; data-parallel over the local devices (`nasnet_tf.placement`).

Crash safety: at every epoch end the model weights, the optimizer state (its iteration count
drives the learning-rate schedule and the drop-path progress), the random-generator states and
the epoch are checkpointed (`nasnet_tf.callbacks.EpochCheckpoint`, `nasnet_tf.checkpoints`),
each file written whole (temp file + `os.replace`) with a SHA-256 sidecar. Run `train` again
with the same `output_dir` and it resumes after the last finished epoch, saying so; with an
`ImageDataset` the resumed epochs see exactly the batches an uninterrupted run would. The last
`keep_checkpoints` checkpoints are kept: one that is damaged (truncated by a full disk, a
cut-short copy, a sync tool) is set aside as `*.corrupt` and the run resumes from the one
before, with a warning; with none usable, `CheckpointError`.

Across hosts (JAX, after `nasnet_tf.multihost.initialize`): every process calls `train` with
the same arguments and the same `output_dir` on a shared file system. Each process reads its
own share of every global batch (`ImageDataset.shard` by process index); together they train
on exactly the single-process batches. Process 0 alone writes checkpoints, `state.json`, the
history and the final model; every process resumes from the same checkpoint (checked).
"""

import json
import logging
import pathlib

import keras
import numpy as np

from nasnet_tf import multihost
from nasnet_tf import placement as placements
from nasnet_tf.builder import build_nasnet
from nasnet_tf.callbacks import DropPathScheduler, EpochCheckpoint
from nasnet_tf.cell import drop_path_cells
from nasnet_tf.checkpoints import (
    CHECKPOINT_DIR,
    STATE_FILE,
    CheckpointError,
    latest_checkpoint,
    restore,
    scan,
    unusable,
)
from nasnet_tf.compiled_state import build_compiled_state, label_row
from nasnet_tf.io_utils import atomic_save, remove_temporaries, write_json
from nasnet_tf.layerwise import LayerwiseGenotype, build_layerwise_cnn
from nasnet_tf.losses import LabelSmoothingCrossentropy
from nasnet_tf.recipe import OPTIMIZERS, SCHEDULES, TrainConfig, dtype_policy, make_optimizer

# The names below were all defined here before the recipe, loss, callbacks and checkpoint files
# got their own modules; they stay importable from here.
__all__ = ["CHECKPOINT_DIR", "OPTIMIZERS", "SCHEDULES", "STATE_FILE", "CheckpointError",
           "EpochCheckpoint", "LabelSmoothingCrossentropy", "TrainConfig", "latest_checkpoint",
           "train"]

logger = logging.getLogger(__name__)

# Fields that may change between a run and its resumption (they do not change the maths).
_RESUMABLE_CHANGES = ("verbose", "tensorboard", "strategy", "jit_compile", "run_eagerly",
                      "keep_checkpoints")


def _build(genotype, config, image_shape, classes, placement):
    policy = dtype_policy(config.mixed_precision)
    previous = keras.config.dtype_policy()
    keras.utils.set_random_seed(config.seed)
    kwargs = {"input_shape": tuple(image_shape), "classes": classes, "seed": config.seed,
              **config.model_kwargs}
    if config.sync_batch_norm and placement.strategy is not None:
        # Batch-norm statistics over the global batch: built in, not patched on afterwards.
        kwargs.setdefault("sync_batch_norm", True)
    try:
        if policy:
            keras.config.set_dtype_policy(policy)
        if isinstance(genotype, LayerwiseGenotype):
            # The 2016 layer-wise space: a plain CNN; the NASNet layout arguments do not apply.
            momentum = config.model_kwargs.get("batch_norm_momentum")
            return build_layerwise_cnn(
                genotype, input_shape=tuple(image_shape), classes=classes, seed=config.seed,
                **({} if momentum is None else {"batch_norm_momentum": momentum}),
            )
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
                "`nasnet_tf.placement.resolve_strategy(...).scope()`."
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
            or a `nasnet_tf.layerwise.LayerwiseGenotype` (a 2016 layer-wise CNN, built with
            `build_layerwise_cnn`; of `model_kwargs` only `batch_norm_momentum` applies),
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
    placement = placements.resolve_strategy(config.strategy)
    global_batch = config.batch_size * (
        placement.num_replicas if config.scale_batch_with_replicas else 1
    )
    placement.check_batch_size(global_batch)
    if placement.num_processes > 1 and not isinstance(data, ImageDataset):
        raise ValueError(
            f"Training across {placement.num_processes} processes needs an ImageDataset (see "
            "`nasnet_tf.data.load_dataset`), which each process reads its share of. "
            f"Received: data={type(data).__name__}"
        )

    if isinstance(data, ImageDataset):
        data = data.with_batch_size(global_batch)
        if placement.num_processes > 1:
            data = data.shard(placement.num_processes, placement.process_index)
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

    checkpoints = scan(pathlib.Path(output_dir) / CHECKPOINT_DIR) if output_dir else []
    states = [c.state for c in checkpoints if c.state is not None]
    if states:
        _check_resumable(states[0], config)
    elif checkpoints:
        raise unusable(output_dir, checkpoints)
    # Process 0 may set damaged files aside below: every process has scanned before.
    multihost.barrier("nasnet_tf.train.scanned")

    with placement.scope():
        if isinstance(model_or_genotype, keras.Model):
            model = model_or_genotype
        else:
            model = _build(model_or_genotype, config, image_shape, classes, placement)
        _check_model(model, placement, image_shape, classes, config)
        if getattr(model, "auxiliary_head", False):
            model.aux_loss_weight = config.aux_loss_weight
        model.compile(
            optimizer=make_optimizer(config, steps, placement.num_replicas),
            loss=LabelSmoothingCrossentropy(config.label_smoothing),
            metrics=["accuracy"],
            jit_compile=config.jit_compile,
            run_eagerly=config.run_eagerly,
        )
        initial_epoch, history = 0, {}
        if checkpoints:
            state = restore(model, output_dir, checkpoints,
                            set_aside_damaged=placement.is_chief)
            initial_epoch, history = int(state["epoch"]), state.get("history") or {}
            message = f"Resuming from epoch {initial_epoch} (checkpoint {state['weights']})"
            if config.verbose:
                print(message, flush=True)  # beside fit's own progress lines
            else:
                logger.info(message)
        multihost.all_equal(initial_epoch, "the epoch to resume from")

        cbs = list(callbacks or [])
        has_drop_path = any(cell.drop_path_keep_prob < 1.0 for cell in drop_path_cells(model))
        if config.drop_path and has_drop_path:
            cbs.append(DropPathScheduler(config.epochs * steps))
        checkpoint = None
        if output_dir:
            out = pathlib.Path(output_dir)
            if placement.is_chief:
                out.mkdir(parents=True, exist_ok=True)
                # A killed run's interrupted writes leave temporary files: the chief, the
                # only writer, clears them before it writes again.
                for directory in (out, out / CHECKPOINT_DIR):
                    remove_temporaries(directory)
                write_json(out / "config.json", config.to_dict(), sort_keys=True)
            checkpoint = EpochCheckpoint(out, history, config.to_dict(),
                                         keep=config.keep_checkpoints, write=placement.is_chief)
            cbs.append(checkpoint)
            if config.tensorboard and placement.is_chief:
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
            # Before the first step: its tracing otherwise creates them and runs twice.
            build_compiled_state(model, label_row(fit_args["x"], fit_args.get("y")))
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
        if output_dir and placement.is_chief:
            out = pathlib.Path(output_dir)
            write_json(out / "history.json", history, sort_keys=True)
            with multihost.outside_distribution():
                atomic_save(out / "model.keras", model.save, checksum=True)
    # `train` returns once the run's files are all written, in every process.
    multihost.barrier("nasnet_tf.train.done")
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
