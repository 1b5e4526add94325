"""Fast estimators: children scored through one `nasnet_tf.supernet.SuperNet`.

- `FreshWeights`: each child trains from fresh weights, as in the NASNet paper, but through
  one super-network whose architecture is an input: the child's path is re-initialised in
  place and trained, so a search pays graph tracing / XLA compilation once instead of once
  per child.
- `SharedWeights`: ENAS (Pham et al. 2018). The super-network's weights are shared by every
  architecture. Each KerasTuner trial is one ENAS epoch: (1) the shared weights train for an
  epoch, an architecture sampled from the search strategy for each minibatch; (2) the strategy
  receives the validation accuracy of `candidates_per_trial` architectures it proposes, all
  scored on the same validation minibatches (`oracle.add_rewards`); (3) the trial's own
  architecture is scored on the whole validation set and reported as the trial's metrics.
  Scores use batch (or recalibrated) statistics, never the moving statistics pooled over
  every architecture trained. A search thus scores many architectures per trial; its final
  pick is `tuners.FinalSelection`'s.

Both train with fixed-size minibatches (a partial last training batch is dropped, a partial
validation batch is padded), so a JAX search compiles its step once. The metrics reported are
`loss` and `accuracy` (training, last epoch) and `val_loss` and `val_accuracy`; labels are
class indices (or one-hot rows) and the model ends in a softmax, as the NAS hypermodels build.
Both need the tuner's hypermodel (`NASNetHyperModel`) and read the data given to
`tuner.search()`: `(x, y)` arrays with `batch_size`, or an iterable of `(images, labels)`
batches such as a `tf.data.Dataset`, and `validation_data` of the same kinds.
"""

import hashlib
import json
import logging
import math
import os
import time
import types
import weakref

import keras
import keras_tuner
import numpy as np

from nasnet_tf.io_utils import (
    CorruptFileError,
    atomic_save,
    atomic_write,
    read_json,
    sha256_file,
)
from nasnet_tf.supernet import SuperNet
from tuners.estimation import PerformanceEstimator, trial_seed
from tuners.reward_oracle import RewardOracle
from tuners.state_files import json_default

__all__ = [
    "STATISTICS", "FreshWeights", "SharedWeights", "supernet_for", "weights_digest",
]

logger = logging.getLogger(__name__)


def supernet_for(hypermodel):
    """The `SuperNet` holding every child of a `NASNetHyperModel`, compiled as its children.

    Example:

    >>> from tuners import NASNetHyperModel
    >>> hm = NASNetHyperModel(num_blocks=1, ops=["identity", "sep_conv_3x3"], num_cells=1,
    ...                       penultimate_filters=48, input_shape=(8, 8, 3), classes=4)
    >>> supernet_for(hm).classes
    4
    """
    space = getattr(hypermodel, "space", None)
    if space is None or not hasattr(space, "ops") or not hasattr(hypermodel, "num_cells"):
        raise ValueError(
            "The super-network estimators need a NASNet cell space hypermodel "
            f"(`tuners.NASNetHyperModel`). Received: hypermodel={hypermodel!r}"
        )
    kwargs = dict(hypermodel.build_kwargs)
    unsupported = {
        k: v for k, v in kwargs.items()
        if k not in ("preset", "auxiliary_head", "drop_path_keep_prob", "stem_multiplier")
    }
    if (
        kwargs.get("preset", "cifar") != "cifar"
        or kwargs.get("auxiliary_head")
        or kwargs.get("drop_path_keep_prob", 1.0) != 1.0
        or unsupported
    ):
        raise ValueError(
            "The super-network holds CIFAR-layout children without auxiliary head or drop "
            "path; the hypermodel's `build_kwargs` ask for something else. "
            f"Received: build_kwargs={hypermodel.build_kwargs}"
        )
    momentum = hypermodel.batch_norm_momentum
    net = SuperNet(
        num_blocks=space.num_blocks,
        ops=space.ops,
        combine_ops=space.combine_ops,
        num_cells=hypermodel.num_cells,
        penultimate_filters=hypermodel.penultimate_filters,
        stem_multiplier=kwargs.get("stem_multiplier", 3),
        input_shape=hypermodel.input_shape,
        classes=hypermodel.classes,
        batch_norm_momentum=0.9997 if momentum is None else momentum,
    )
    net.compile(
        optimizer=hypermodel.make_optimizer(),
        loss=hypermodel.loss,
        metrics=["accuracy"],
    )
    return net


class _Batches:
    """Fixed-size minibatches of `(x, y)` arrays, or of an iterable of batches."""

    def __init__(self, x, y=None, batch_size=None):
        self.arrays = y is not None
        if self.arrays:
            x, y = np.asarray(x), np.asarray(y)
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(
                    "Images and labels must be non-empty and of equal length. "
                    f"Received: {len(x)} images and {len(y)} labels"
                )
            self.batch_size = min(int(batch_size or 32), len(x))
        else:
            if not hasattr(x, "__iter__"):
                raise ValueError(
                    "Data must be `(x, y)` arrays or an iterable of `(images, labels)` batches "
                    f"(e.g. a tf.data.Dataset). Received: {type(x).__name__}"
                )
            self.batch_size = None
        self.x, self.y = x, y

    def _raw(self, rng):
        if self.arrays:
            order = np.arange(len(self.x)) if rng is None else rng.permutation(len(self.x))
            for start in range(0, len(order), self.batch_size):
                index = order[start: start + self.batch_size]
                yield self.x[index], self.y[index]
        else:
            for batch in self.x:
                x, y = batch[0], batch[1]
                yield np.asarray(keras.ops.convert_to_numpy(x)), np.asarray(
                    keras.ops.convert_to_numpy(y))

    def train(self, rng):
        """Full batches only (a fixed shape keeps one compiled step)."""
        for x, y in self._raw(rng):
            if self.batch_size is None:
                self.batch_size = len(x)
            if len(x) == self.batch_size:
                yield x, y

    def num_full_batches(self):
        """Full training minibatches per epoch, or None for an iterable (unknown up front)."""
        return len(self.x) // self.batch_size if self.arrays else None

    def evaluate(self):
        """Every example, the last batch padded: yields `(x, y, n_real)`."""
        for x, y in self._raw(None):
            if self.batch_size is None:
                self.batch_size = len(x)
            n = len(x)
            if n < self.batch_size:
                pad = self.batch_size - n
                x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
                y = np.concatenate([y, np.repeat(y[-1:], pad, axis=0)])
            yield x, y, n


def _labels(y):
    y = np.asarray(y)
    return y.argmax(axis=-1) if y.ndim == 2 else y.reshape(-1).astype("int64")


def _scores(probs, y, n):
    probs, labels = np.asarray(probs)[:n], _labels(y)[:n]
    correct = float((probs.argmax(axis=-1) == labels).sum())
    picked = np.clip(probs[np.arange(n), labels], 1e-12, None)
    return correct, float(-np.log(picked).sum())


class _SuperNetEstimator(PerformanceEstimator):
    """Shared parts: the super-network, the data, training and scoring loops."""

    def __init__(self, seed=0, supernet=None):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"`seed` must be an integer >= 0. Received: seed={seed!r}")
        if supernet is not None and (
            not isinstance(supernet, SuperNet) or supernet.optimizer is None
        ):
            raise ValueError(
                "`supernet` must be a compiled `nasnet_tf.supernet.SuperNet` (e.g. another "
                f"estimator's `.supernet`) or None. Received: supernet={supernet!r}"
            )
        self.seed = seed
        self.supernet = supernet
        self._initial_optimizer = None
        self.num_scored = 0
        self.scored = []  # [elapsed seconds, reward, source] of every architecture scored
        self._clock_start = None

    def _ensure_supernet(self, child):
        if self._initial_optimizer is None:
            if self.supernet is None:
                if child.hypermodel is None:
                    raise ValueError(
                        f"{type(self).__name__} needs the tuner's hypermodel; use it with "
                        "`NASNetTuner(estimator=...)`."
                    )
                self.supernet = supernet_for(child.hypermodel)
            self._start_weights()
        if self._clock_start is None:
            self._clock_start = time.time()
        return self.supernet

    def _start_weights(self):
        """What a new estimator does to the super-network before its first child: records
        the optimizer state to reset to."""
        self._initial_optimizer = _fresh_optimizer_state(self.supernet)

    def _maybe_restore(self, child):
        """Applies a state `reload` announced (estimators that keep state)."""

    def prepare(self, hypermodel):
        """Builds (or takes) the super-network and restores the saved state, as the first
        trial would: for work after a search, e.g. `tuners.FinalSelection` in a resumed
        process that ran no trial.

        Args:
            hypermodel: the tuner's `NASNetHyperModel`.

        Returns:
            The `SuperNet`.
        """
        net = self._ensure_supernet(types.SimpleNamespace(hypermodel=hypermodel))
        self._maybe_restore(None)
        return net

    def _reset_optimizer(self):
        for variable, value in zip(self.supernet.optimizer.variables, self._initial_optimizer):
            variable.assign(value)

    @staticmethod
    def _data(fit_args, fit_kwargs):
        x = fit_args[0] if fit_args else fit_kwargs.get("x")
        y = fit_args[1] if len(fit_args) > 1 else fit_kwargs.get("y")
        if x is None:
            raise ValueError("Pass the training data to `search()` (`x, y` or a dataset).")
        train = _Batches(x, y, fit_kwargs.get("batch_size"))
        validation = fit_kwargs.get("validation_data")
        if validation is None:
            raise ValueError(
                "Pass `validation_data=` to `search()`: the super-network estimators score "
                "architectures on held-out data."
            )
        if isinstance(validation, (tuple, list)):
            val = _Batches(validation[0], validation[1], train.batch_size or 32)
        else:
            val = _Batches(validation)
        epochs = int(fit_kwargs.get("epochs", 1))
        steps = fit_kwargs.get("steps_per_epoch")
        return train, val, epochs, None if steps is None else int(steps)

    def _inputs(self, x, arch):
        return {"images": x, "architecture": np.broadcast_to(arch, (len(x), arch.size))}

    def _train_epoch(self, train, rng, arch_for_step, steps=None):
        """One epoch of training; `arch_for_step(step)` gives each minibatch's architecture."""
        totals, count = {}, 0
        for step, (x, y) in enumerate(train.train(rng)):
            if steps is not None and step >= steps:
                break
            logs = self.supernet.train_on_batch(
                self._inputs(x, arch_for_step(step)), y, return_dict=True
            )
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + float(value)
            count += 1
        self._steps_seen = count
        if count == 0:
            raise ValueError(
                "No full training batch: the training data is smaller than one batch."
            )
        return {key: value / count for key, value in totals.items()}

    def _evaluate(self, val, arch, batches=None, predict=None):
        """Accuracy and loss on `val` (a `_Batches`), or on a list of its padded `batches`,
        through `predict` (default: `predict_on_batch`, i.e. moving statistics)."""
        predict = predict or self.supernet.predict_on_batch
        correct = loss = seen = 0.0
        for x, y, n in val.evaluate() if batches is None else batches:
            probs = predict(self._inputs(x, arch))
            c, l_ = _scores(probs, y, n)
            correct, loss, seen = correct + c, loss + l_, seen + n
        if seen == 0:
            raise ValueError("The validation data is empty.")
        return {"val_accuracy": correct / seen, "val_loss": loss / seen}

    def _record(self, reward, source):
        self.num_scored += 1
        self.scored.append([round(time.time() - self._clock_start, 3), float(reward), source])

    @staticmethod
    def _callbacks(child, model):
        # KerasTuner's best-epoch checkpoint would save the whole super-network each epoch;
        # a child's path is rebuilt from its genotype instead (`SuperNet.child_weights`).
        kept = [c for c in child.callbacks
                if type(c).__name__ != "SaveBestEpoch"]
        return keras.callbacks.CallbackList(kept, model=model)

    def get_config(self):
        return {"seed": self.seed}


class FreshWeights(_SuperNetEstimator):
    """Scores each child from fresh weights, through one compiled super-network.

    For each trial the child's path in the super-network is re-initialised (seeded by the
    estimator's seed and the trial id, so the same child with the same seed gets the same
    score), the optimizer state is reset, and the child trains for the `epochs` given to
    `search()` (at most `steps_per_epoch` steps each), then is scored on `validation_data`.
    Per-epoch metrics go to the tuner's callbacks and to the oracle (`step` = epoch), so reward
    rules that read a trial's history (e.g. `tuners.rewards.nas2016_reward`) work.

    Args:
        seed: int >= 0, seeds the fresh weights and the order of the minibatches.
        supernet: optional compiled `SuperNet` to reuse (e.g. another estimator's
            `.supernet`, for several searches of one space in one process: one compilation).

    Example:

    ```python
    tuner = NASNetTuner(num_blocks=3, ops=ENAS_OPS, estimator=FreshWeights(seed=0), ...)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=2, batch_size=64)
    ```
    """

    def estimate(self, child, *fit_args, **fit_kwargs):
        net = self._ensure_supernet(child)
        train, val, epochs, steps = self._data(fit_args, fit_kwargs)
        arch = net.encode(child.architecture)
        child_seed = trial_seed(self.seed, child.trial_id)
        net.reinitialize(child_seed, child.architecture)
        self._reset_optimizer()
        rng = np.random.default_rng(child_seed)
        callbacks = self._callbacks(child, net)
        callbacks.on_train_begin()
        logs = {}
        for epoch in range(epochs):
            callbacks.on_epoch_begin(epoch)
            logs = self._train_epoch(train, rng, lambda _: arch, steps)
            if not all(math.isfinite(v) for v in logs.values()):
                raise keras_tuner.errors.FailedTrialError(
                    f"Trial {child.trial_id}: the child's training loss is not finite "
                    f"({logs}); the child diverged. Architecture: {child.architecture}"
                )
            logs.update(self._evaluate(val, arch))
            callbacks.on_epoch_end(epoch, logs)
            if child.report is not None:
                child.report(logs, epoch)
        callbacks.on_train_end(logs)
        self._record(logs["val_accuracy"], "trial")
        return logs


STATISTICS = ("batch", "recalibrate", "moving")
"""How `SharedWeights` treats batch normalization when it scores an architecture."""

# 3: the super-network's optimizer state is `FlatUpdates`' (one vector per slot).
# 4: its candidate ops' weights stacked over a cell's blocks, and the first Normal cell's
#    state 1 a group of its own in `add`-only spaces (other variables, in another order).
# 5: each cell side's candidate weights (and moving statistics) as one flat `[B, size]`
#    variable.
SHARED_STATE_VERSION = 5


class SharedWeights(_SuperNetEstimator):
    """ENAS-style weight sharing: one KerasTuner trial is one epoch of the shared weights.

    Each trial: (1) the shared weights train for an epoch, each minibatch on an architecture
    drawn from the search strategy (all of the epoch's drawn in one call); (2) the strategy
    gets the accuracy of `candidates_per_trial` architectures it proposes, every one scored
    on the same `validation_batches` validation minibatches (common random numbers: the
    batches' difficulty drops out of the comparison), drawn afresh each epoch; (3) the
    trial's own architecture is scored on the whole validation data and reported as the
    trial's metrics. Every score is a *weight-sharing estimate*; `tuners.FinalSelection`
    (run by `NASTuner.search` at the end) turns them into a standalone-trained pick.

    Batch normalization when scoring (`statistics`): the moving statistics of the shared
    weights average over every architecture trained, which fits none of them and favours
    what the strategy samples most. `"batch"` (default) scores with each batch's own
    statistics (ENAS); `"recalibrate"` first measures the candidate's statistics on
    `recalibration_batches` training batches (single-path one-shot NAS); `"moving"` uses the
    pooled moving statistics (for comparison). Scoring never changes the shared weights,
    their moving statistics included. `benchmarks/estimator_rank.py` compares the three
    against architectures trained standalone.

    The shared weights train with ENAS' recipe by default: SGD with Nesterov momentum 0.9,
    weight decay `2e-4` (ENAS' L2 penalty of 1e-4 on the sum of squares), and a cosine
    learning rate from `learning_rate` down to 1% of it, restarted after 10, 20, 40, ...
    epochs (SGDR, as ENAS). `optimizer="adam"` selects Adam (learning rate 1e-3).

    With a strategy that proposes repeats (`ControllerOracle`, `EvolutionOracle`), a trial
    repeating an architecture is scored again with the current weights (the oracle's
    `rescore_repeats` is set): under shared weights a repeat is information. For any other
    oracle (e.g. KerasTuner's random search) architectures are drawn uniformly.

    State (the shared weights, their optimizer, the progress of the running trial and every
    score) is written as one versioned unit under the tuner's project directory after each
    phase, the previous unit kept: a search killed at any moment resumes, from the previous
    unit if the newest is incomplete or damaged, and a trial whose training finished before
    the kill is not trained again.

    Args:
        candidates_per_trial: architectures proposed by the strategy and rewarded after each
            epoch (ENAS: 10-20 per controller step).
        validation_batches: validation minibatches every candidate of an epoch is scored on.
        statistics: `"batch"`, `"recalibrate"` or `"moving"` (see above).
        recalibration_batches: training minibatches measured per candidate with
            `statistics="recalibrate"`.
        optimizer: `"sgd"` (ENAS' recipe), `"adam"`, or a `keras.optimizers.Optimizer`
            (its configuration is copied).
        learning_rate: the peak learning rate (default 0.05 for SGD, 1e-3 for Adam); with an
            optimizer instance, None keeps its own.
        restart_epochs: epochs of the first cosine period (doubling after each restart), or
            None for a constant learning rate.
        seed: int >= 0, seeds the minibatch order, the validation batches and the initial
            weights.
        supernet: optional compiled `SuperNet` to reuse; its weights and optimizer state
            start afresh (seeded) for this estimator.

    Example:

    ```python
    tuner = NASNetTuner(num_blocks=3, ops=ENAS_OPS, max_trials=30,
                        estimator=SharedWeights(candidates_per_trial=20))
    tuner.search(x, y, validation_data=(x_val, y_val), batch_size=64)
    ```
    """

    repeats_are_informative = True
    """A repeated architecture is scored again with the current weights (see `NASTuner`)."""

    def __init__(self, candidates_per_trial=20, validation_batches=4, statistics="batch",
                 recalibration_batches=4, optimizer="sgd", learning_rate=None,
                 restart_epochs=10, seed=0, supernet=None):
        super().__init__(seed=seed, supernet=supernet)
        for value, name, low in ((candidates_per_trial, "candidates_per_trial", 0),
                                 (validation_batches, "validation_batches", 1),
                                 (recalibration_batches, "recalibration_batches", 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
        if statistics not in STATISTICS:
            raise ValueError(
                f"`statistics` must be one of {list(STATISTICS)}. "
                f"Received: statistics={statistics!r}")
        if not (optimizer in ("sgd", "adam") or isinstance(optimizer, keras.optimizers.Optimizer)):
            raise ValueError(
                "`optimizer` must be 'sgd', 'adam' or a `keras.optimizers.Optimizer`. "
                f"Received: optimizer={optimizer!r}")
        if learning_rate is not None and not (
            isinstance(learning_rate, (int, float)) and not isinstance(learning_rate, bool)
            and 0 < learning_rate < math.inf
        ):
            raise ValueError(
                "`learning_rate` must be a number > 0 or None. "
                f"Received: learning_rate={learning_rate!r}")
        if restart_epochs is not None and (
            isinstance(restart_epochs, bool) or not isinstance(restart_epochs, int)
            or restart_epochs < 1
        ):
            raise ValueError(
                "`restart_epochs` must be an integer >= 1 or None. "
                f"Received: restart_epochs={restart_epochs!r}")
        self.candidates_per_trial = candidates_per_trial
        self.validation_batches = validation_batches
        self.statistics = statistics
        self.recalibration_batches = recalibration_batches
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.restart_epochs = restart_epochs
        self.epochs_done = 0
        self.progress = {}  # trial_id -> {"phase": "trained" | "rewarded" | "done", ...}
        self.candidates = []  # [values, reward, epoch] of every rewarded candidate
        self._directory = None
        self._uniform_rng = None
        self._version = 0
        self._train_batches = None  # minibatches per epoch, once an iterable was seen whole
        self.final_ranking = None  # set by `tuners.FinalSelection` through the tuner

    # -- the shared weights' optimizer ---------------------------------------------------------
    def make_optimizer(self):
        """A new optimizer for the shared weights (see the class docstring)."""
        if isinstance(self.optimizer, keras.optimizers.Optimizer):
            optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(self.optimizer))
            if self.learning_rate is not None:
                optimizer.learning_rate = float(self.learning_rate)
            return optimizer
        if self.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate=self.learning_rate or 1e-3)
        return keras.optimizers.SGD(learning_rate=self.learning_rate or 0.05, momentum=0.9,
                                    nesterov=True, weight_decay=2e-4)

    def _compile(self, net):
        optimizer = self.make_optimizer()
        current = getattr(net.optimizer, "inner_optimizer", net.optimizer)
        same = current is not None and type(current) is type(optimizer) and (
            _comparable(current.get_config()) == _comparable(optimizer.get_config()))
        if not same:
            net.compile(optimizer=optimizer, loss=net.loss, metrics=["accuracy"])
        self._peak_learning_rate = float(keras.ops.convert_to_numpy(
            optimizer.learning_rate))

    def learning_rate_at(self, epoch):
        """The learning rate at (fractional) `epoch` of the shared weights' training."""
        peak = self._peak_learning_rate
        if self.restart_epochs is None:
            return peak
        period, start = float(self.restart_epochs), 0.0
        while epoch >= start + period:
            start, period = start + period, 2 * period
        low = peak / 100.0
        return low + 0.5 * (peak - low) * (1 + math.cos(math.pi * (epoch - start) / period))

    def _start_weights(self):
        # Seeded shared weights and a fresh optimizer, also for a super-network another
        # estimator compiled (reusing it skips the compilation).
        self._compile(self.supernet)
        super()._start_weights()
        self.supernet.reinitialize(self.seed)
        self._reset_optimizer()

    # -- sampling ------------------------------------------------------------------------------
    def _sampler(self, child):
        oracle = child.oracle
        return oracle if isinstance(oracle, RewardOracle) else None

    def _uniform(self, child, n):
        from tuners.nasnet_space import BLOCK_FIELDS, CELL_TYPES, hp_name

        space = child.hypermodel.space
        if self._uniform_rng is None:
            self._uniform_rng = np.random.default_rng([self.seed, 2])
        out = []
        for _ in range(n):
            values = {}
            for cell in CELL_TYPES:
                for k in range(space.num_blocks):
                    for field in BLOCK_FIELDS:
                        options = space.options(k, field)
                        values[hp_name(cell, k, field)] = options[
                            int(self._uniform_rng.integers(len(options)))]
            out.append({"id": None, "values": values})
        return out

    def _sample(self, child, n, record, rng=None):
        sampler = self._sampler(child)
        if sampler is None:
            return self._uniform(child, n)
        return sampler.sample_candidates(n, record=record, rng=rng)

    # -- scoring -------------------------------------------------------------------------------
    def _score(self, genotype, batches, recalibration=None):
        """Accuracy and loss of `genotype` on the padded `batches`, with the estimator's
        statistics. The caller restores the moving statistics afterwards."""
        net = self.supernet
        if self.statistics == "recalibrate":
            net.recalibrate(genotype, recalibration)
        predict = (net.predict_with_batch_statistics if self.statistics == "batch"
                   else net.predict_on_batch)
        return self._evaluate(None, net.encode(genotype), batches, predict=predict)

    def _epoch_batches(self, batches, epoch):
        """Of the padded validation `batches`, those every candidate of `epoch` is scored on
        (full ones first), drawn from the epoch's own seed; and their indices."""
        full = [i for i, (_, _, n) in enumerate(batches) if n == len(batches[i][0])]
        pool = full if len(full) >= self.validation_batches else list(range(len(batches)))
        rng = np.random.default_rng([self.seed, 3, epoch])
        picked = sorted(int(i) for i in rng.choice(
            pool, size=min(self.validation_batches, len(pool)), replace=False))
        return [batches[i] for i in picked], picked

    def _recalibration_images(self, train, epoch):
        if self.statistics != "recalibrate":
            return None
        images = []
        for x, _ in train.train(np.random.default_rng([self.seed, 5, epoch])):
            images.append(x)
            if len(images) == self.recalibration_batches:
                break
        return images

    # -- one ENAS epoch per trial -------------------------------------------------------------
    def estimate(self, child, *fit_args, **fit_kwargs):
        if self._directory is None:
            self._directory = os.path.dirname(os.path.abspath(child.directory))
        net = self._ensure_supernet(child)
        self._maybe_restore(child)
        train, val, _, steps = self._data(fit_args, fit_kwargs)
        decode = child.hypermodel.decode
        progress = self.progress.setdefault(child.trial_id, {"phase": "started"})
        if progress["phase"] == "started":
            progress["epoch"] = self.epochs_done
            self._train_shared(child, train, steps, decode)
            progress.update(phase="trained", logs=self._last_logs)
            self._save()
        epoch = progress.get("epoch", self.epochs_done - 1)
        snapshot = net.moving_statistics()
        recalibration = self._recalibration_images(train, epoch)
        val_batches = list(val.evaluate())
        sampler = self._sampler(child)
        if progress["phase"] == "trained" and self.candidates_per_trial:
            if sampler is not None and sampler.recorded_candidates:
                # Drawn by a run killed before it scored them: drawn again below.
                sampler.discard_candidates(list(sampler.recorded_candidates))
            # The epoch's own seed: a rerun of this phase draws the same architectures.
            samples = self._sample(child, self.candidates_per_trial, record=True,
                                   rng=np.random.default_rng([self.seed, 8, epoch]))
            picked, indices = self._epoch_batches(val_batches, epoch)
            progress["validation_batches"] = indices
            rewards = []
            for sample in samples:
                score = self._score(decode(sample["values"]), picked, recalibration)
                rewards.append(score["val_accuracy"])
                self._record(score["val_accuracy"], "candidate")
                self.candidates.append([sample["values"], score["val_accuracy"], epoch])
            net.restore_moving_statistics(snapshot)
            progress.update(phase="rewarded",
                            rewards=[[s["id"], r] for s, r in zip(samples, rewards)])
            # Saved before the oracle hears of them: a kill after this does not redo them.
            self._save(weights_changed=False)
            if sampler is not None and samples:
                sampler.add_rewards([s["id"] for s in samples], rewards)
        elif progress["phase"] == "rewarded" and sampler is not None:
            # Killed between the save above and the oracle's: the rewards it still awaits.
            waiting = sampler.recorded_candidates
            late = [(c, r) for c, r in progress.get("rewards", []) if c in waiting]
            if late:
                sampler.add_rewards([c for c, _ in late], [r for _, r in late])
        logs = dict(progress.get("logs", {}))
        logs.update(self._score(child.architecture, val_batches, recalibration))
        net.restore_moving_statistics(snapshot)
        self._record(logs["val_accuracy"], "trial")
        progress.update(phase="done")
        self._save(weights_changed=False)
        callbacks = self._callbacks(child, net)
        callbacks.on_epoch_end(0, logs)
        if child.report is not None:
            child.report(logs, 0)
        return logs

    def _train_shared(self, child, train, steps, decode):
        """One epoch of the shared weights, each minibatch on an architecture of the strategy."""
        net = self.supernet
        rng = np.random.default_rng([self.seed, self.epochs_done])
        known = train.num_full_batches() or self._train_batches
        if steps is not None:
            known = steps if known is None else min(known, steps)
        encoded, queue = {}, []
        # The epoch's own seed, not the strategy's random state (which the oracle saves apart
        # from these weights): a rerun of a killed epoch trains on the same architectures.
        draws = np.random.default_rng([self.seed, 7, self.epochs_done])

        def arch_for_step(step):
            if not queue:  # the whole epoch in one call when its length is known
                queue.extend(self._sample(child, known or 32, record=False, rng=draws))
            values = queue.pop(0)["values"]
            key = json.dumps(values, sort_keys=True)
            if key not in encoded:
                encoded[key] = net.encode(decode(values))
            fraction = step / known if known else 0.0
            net.optimizer.learning_rate = self.learning_rate_at(self.epochs_done + fraction)
            return encoded[key]

        logs = self._train_epoch(train, rng, arch_for_step, steps)
        if known is None:
            self._train_batches = self._steps_seen
        if not all(math.isfinite(v) for v in logs.values()):
            raise keras_tuner.errors.FailedTrialError(
                f"Trial {child.trial_id}: the shared weights diverged ({logs})."
            )
        self.epochs_done += 1
        self._last_logs = logs

    def score_architectures(self, architectures, validation_data, batch_size=None,
                            num_batches=None, recalibration_data=None):
        """Weight-sharing estimates of `architectures` with the current shared weights, all on
        the same validation batches; the shared weights are left as they were.

        Args:
            architectures: genotypes (or their dicts).
            validation_data: `(x, y)` arrays or an iterable of batches.
            batch_size: the batch size for arrays (default: the search's).
            num_batches: score on the first `num_batches` batches only (default: all).
            recalibration_data: training batches for `statistics="recalibrate"`: `(x, y)`
                arrays or an iterable of batches.

        Returns:
            A list of `{"val_accuracy", "val_loss"}` dicts, one per architecture.
        """
        net = self.supernet
        if net is None:
            raise ValueError("The shared weights do not exist yet: run a search first.")
        if isinstance(validation_data, (tuple, list)):
            val = _Batches(validation_data[0], validation_data[1], batch_size or 32)
        else:
            val = _Batches(validation_data)
        batches = list(val.evaluate())[:num_batches]
        recalibration = None
        if self.statistics == "recalibrate":
            if recalibration_data is None:
                raise ValueError("`statistics='recalibrate'` needs `recalibration_data`.")
            if isinstance(recalibration_data, (tuple, list)):
                source = _Batches(recalibration_data[0], recalibration_data[1],
                                  val.batch_size)
            else:
                source = _Batches(recalibration_data)
            recalibration = self._recalibration_images(source, self.epochs_done)
        snapshot = net.moving_statistics()
        try:
            return [self._score(a, batches, recalibration) for a in architectures]
        finally:
            net.restore_moving_statistics(snapshot)

    def best_architectures(self, k=5):
        """The `k` best architectures as `(values, reward)`, best first.

        After `tuners.FinalSelection` ran, its ranking (standalone scores first); before,
        the candidates of the newest epoch, all scored with the same weights on the same
        batches (ties: first seen). Rewards of older epochs come from other weights and are
        not compared.
        """
        selection = self.final_ranking
        if selection:
            return [(r["values"], r["score"]) for r in selection[:k]]
        if not self.candidates:
            return []
        newest = max(c[2] for c in self.candidates)
        recent = [c for c in self.candidates if c[2] == newest]
        order = sorted(range(len(recent)), key=lambda i: (-recent[i][1], i))
        return [(recent[i][0], recent[i][1]) for i in order[:k]]

    # -- persistence --------------------------------------------------------------------------
    def _paths(self, directory, version):
        return (os.path.join(directory, f"shared_weights_{version:06d}.weights.h5"),
                os.path.join(directory, f"shared_optimizer_{version:06d}.npz"))

    def _state_paths(self, directory):
        return (os.path.join(directory, "shared_state.json"),
                os.path.join(directory, "shared_state.prev.json"))

    def save(self, directory):
        self._directory = directory
        self._save(weights_changed=False)

    def _save(self, weights_changed=True):
        """Writes the state as one versioned unit: new weights and optimizer files (when they
        changed) under a new version, then `shared_state.json` naming them with their
        checksums, the previous state kept as `shared_state.prev.json`; files of older
        versions are removed. A kill between any two writes leaves a usable unit."""
        if (self._directory is None or self.supernet is None
                or self._initial_optimizer is None or getattr(self, "_pending_restore", False)):
            return  # nothing trained in this process yet: what is on disk is the state
        state, previous = self._state_paths(self._directory)
        if weights_changed or not self._version:
            self._version += 1
            weights, optimizer = self._paths(self._directory, self._version)
            atomic_save(weights, self.supernet.save_weights)
            self._weights_sha256 = sha256_file(weights)
            self._values_sha256 = weights_digest(self.supernet)
            arrays = {f"o{i}": np.asarray(keras.ops.convert_to_numpy(v))
                      for i, v in enumerate(self.supernet.optimizer.variables)}
            atomic_write(optimizer, lambda f: np.savez(f, **arrays), binary=True,
                         prefix=".tmp-shared_optimizer_", suffix=".npz")
            self._optimizer_sha256 = sha256_file(optimizer)
        weights, optimizer = self._paths(self._directory, self._version)
        payload = {
            "format": SHARED_STATE_VERSION,
            "version": self._version,
            "epochs_done": self.epochs_done,
            "progress": self.progress,
            "candidates": self.candidates,
            "scored": self.scored,
            "num_scored": self.num_scored,
            "train_batches": self._train_batches,
            "uniform_rng": None if self._uniform_rng is None
            else self._uniform_rng.bit_generator.state,
            "final_ranking": self.final_ranking,
            "weights_file": os.path.basename(weights),
            "weights_sha256": self._weights_sha256,
            "values_sha256": self._values_sha256,
            "optimizer_file": os.path.basename(optimizer),
            "optimizer_sha256": self._optimizer_sha256,
            "optimizer": _optimizer_key(self.supernet),
        }
        text = json.dumps(payload, default=json_default)
        if os.path.exists(state):
            with open(state) as f:
                old = f.read()
            atomic_write(previous, lambda f: f.write(old), prefix=".tmp-shared_state_",
                         suffix=".json")
        atomic_write(state, lambda f: f.write(text), prefix=".tmp-shared_state_", suffix=".json")
        self._remove_unreferenced()

    def _remove_unreferenced(self):
        keep = set()
        for path in self._state_paths(self._directory):
            payload = read_json_or_none(path)
            if payload:
                keep.update((payload.get("weights_file"), payload.get("optimizer_file")))
        for name in os.listdir(self._directory):
            stale_tmp = _is_shared_temporary(name)
            versioned = name.startswith(("shared_weights_", "shared_optimizer_"))
            if stale_tmp or (versioned and name not in keep):
                try:
                    os.remove(os.path.join(self._directory, name))
                except FileNotFoundError:
                    pass

    def reload(self, directory):
        self._directory = directory
        self._pending_restore = True
        # A process killed while writing left a temporary file; this one is the writer now.
        for name in (os.listdir(directory) if os.path.isdir(directory) else ()):
            if _is_shared_temporary(name):
                try:
                    os.remove(os.path.join(directory, name))
                except FileNotFoundError:
                    pass

    def _maybe_restore(self, child):
        if not getattr(self, "_pending_restore", False):
            return
        self._pending_restore = False
        problems = []
        for path in self._state_paths(self._directory):
            payload = read_json_or_none(path)
            if payload is None:
                if os.path.exists(path):
                    problems.append(f"{path}: not readable JSON")
                continue
            problem = self._restore_from(payload)
            if problem is None:
                if problems:
                    logger.warning("SharedWeights: %s; resumed from the previous state, %s.",
                                   "; ".join(problems), path)
                return
            problems.append(problem)
        if problems:
            raise ValueError(
                "The shared weights' state cannot be restored: " + "; ".join(problems)
                + ". Rerun the search with `overwrite=True` to start afresh.")

    def _restore_from(self, payload):
        """Loads one state unit; returns why it is unusable, or None."""
        if payload.get("format") != SHARED_STATE_VERSION:
            return f"state format {payload.get('format')!r} (expected {SHARED_STATE_VERSION})"
        weights = os.path.join(self._directory, payload["weights_file"])
        optimizer = os.path.join(self._directory, payload["optimizer_file"])
        for path, digest in ((weights, payload["weights_sha256"]),
                             (optimizer, payload["optimizer_sha256"])):
            if not os.path.exists(path):
                return f"{path} is missing"
            if sha256_file(path) != digest:
                return f"{path} does not match its checksum"
        key = _optimizer_key(self.supernet)
        if payload.get("optimizer", key) != key:
            # Optimizers with as many slots (e.g. RMSprop, momentum SGD) have the same shapes.
            return (f"it holds the state of another optimizer: saved with "
                    f"{payload['optimizer']}; this search's is {key}")
        with np.load(optimizer) as arrays:
            saved = [arrays[f"o{i}"] for i in range(len(arrays.files))]
        variables = self.supernet.optimizer.variables
        if [a.shape for a in saved] != [tuple(v.shape) for v in variables]:
            return (f"{optimizer} holds the state of another optimizer ({len(saved)} arrays; "
                    f"the super-network's optimizer has {len(variables)} variables)")
        self.supernet.load_weights(weights)
        for variable, value in zip(variables, saved):
            variable.assign(value)
        self._version = payload["version"]
        self._weights_sha256 = payload["weights_sha256"]
        self._values_sha256 = payload["values_sha256"]
        self._optimizer_sha256 = payload["optimizer_sha256"]
        self.epochs_done = payload["epochs_done"]
        self.progress = payload["progress"]
        self.candidates = payload["candidates"]
        self.scored = payload["scored"]
        self.num_scored = payload["num_scored"]
        self._train_batches = payload.get("train_batches")
        self.final_ranking = payload.get("final_ranking")
        if payload["uniform_rng"] is not None:
            self._uniform_rng = np.random.default_rng()
            self._uniform_rng.bit_generator.state = payload["uniform_rng"]
        return None

    def get_config(self):
        optimizer = self.optimizer
        if isinstance(optimizer, keras.optimizers.Optimizer):
            optimizer = keras.optimizers.serialize(optimizer)
        return {"candidates_per_trial": self.candidates_per_trial,
                "validation_batches": self.validation_batches, "statistics": self.statistics,
                "recalibration_batches": self.recalibration_batches, "optimizer": optimizer,
                "learning_rate": self.learning_rate, "restart_epochs": self.restart_epochs,
                "seed": self.seed}


def _is_shared_temporary(name):
    """Whether `name` is the temporary file of an interrupted write of the state unit."""
    return name.startswith(".tmp-") and any(
        s in name for s in ("shared_weights_", "shared_optimizer_", "shared_state_"))


def _optimizer_key(net):
    """The super-network's optimizer as the state records it: its class and its settings
    (not its name or its learning rate, which the restarts change), as JSON reads them back."""
    optimizer = getattr(net.optimizer, "inner_optimizer", net.optimizer)
    return json.loads(json.dumps(
        {"class": type(optimizer).__name__, **_comparable(optimizer.get_config())}))


def _comparable(config):
    return {k: v for k, v in config.items() if k not in ("name", "learning_rate")}


def read_json_or_none(path):
    """The JSON at `path`, or None when it is missing or damaged (a state that may fall back)."""
    if not os.path.exists(path):
        return None
    try:
        return read_json(path)
    except CorruptFileError:
        return None

_OPTIMIZER_STATES = weakref.WeakKeyDictionary()


def _fresh_optimizer_state(net):
    """The super-network's optimizer state before any step, recorded the first time its
    optimizer is seen (estimators that share a super-network reset to it). `SuperNet.compile`
    has built the optimizer."""
    optimizer = net.optimizer
    if optimizer not in _OPTIMIZER_STATES:
        _OPTIMIZER_STATES[optimizer] = [np.array(keras.ops.convert_to_numpy(v))
                                        for v in optimizer.variables]
    return _OPTIMIZER_STATES[optimizer]


def weights_digest(model):
    """SHA-256 of a model's weight values, in order (to tell a damaged file from a good one)."""
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return digest.hexdigest()
