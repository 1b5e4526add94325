"""Fast estimators: children scored through one `nasnet_tf.supernet.SuperNet`.

- `FreshWeights`: each child trains from fresh weights, as in the NASNet paper, but through
  one super-network whose architecture is an input: the child's path is re-initialised in
  place and trained, so a search pays graph tracing / XLA compilation once instead of once
  per child.
- `SharedWeights`: ENAS (Pham et al. 2018). The super-network's weights are shared by every
  architecture. Each KerasTuner trial is one ENAS epoch: (1) the shared weights train for an
  epoch, an architecture sampled from the search strategy for each minibatch; (2) the strategy
  receives the validation accuracy of `candidates_per_trial` sampled architectures, each on
  one validation minibatch (`oracle.add_rewards`); (3) the trial's own architecture is scored
  on the whole validation set and reported as the trial's metrics. A search thus scores many
  architectures per trial.

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
import math
import os
import time
import weakref

import keras
import keras_tuner
import numpy as np

from nasnet_tf.io_utils import atomic_save, atomic_write
from nasnet_tf.supernet import SuperNet
from tuners.estimation import PerformanceEstimator, trial_seed
from tuners.state_files import json_default

__all__ = ["FreshWeights", "SharedWeights", "supernet_for", "weights_digest"]


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
        optimizer=hypermodel._make_optimizer(),
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
            self._initial_optimizer = _fresh_optimizer_state(self.supernet)
            self._start_weights()
        if self._clock_start is None:
            self._clock_start = time.time()
        return self.supernet

    def _start_weights(self):
        """What a new estimator does to the super-network before its first child."""

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
        if count == 0:
            raise ValueError(
                "No full training batch: the training data is smaller than one batch."
            )
        return {key: value / count for key, value in totals.items()}

    def _evaluate(self, val, arch, batches=None):
        """Accuracy and loss on `val` (a `_Batches`), or on a list of its padded `batches`."""
        correct = loss = seen = 0.0
        for x, y, n in val.evaluate() if batches is None else batches:
            probs = self.supernet.predict_on_batch(self._inputs(x, arch))
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


class SharedWeights(_SuperNetEstimator):
    """ENAS-style weight sharing: one KerasTuner trial is one epoch of the shared weights.

    Args:
        candidates_per_trial: architectures sampled from the strategy and rewarded after each
            epoch (ENAS: 10-20 per controller step, 50 steps per epoch).
        validation_batches: validation minibatches each candidate is scored on (ENAS: 1).
        seed: int >= 0, seeds the minibatch order and the initial weights.
        supernet: optional compiled `SuperNet` to reuse; its weights and optimizer state
            start afresh (seeded) for this estimator.

    The strategy must offer `sample_candidates(n, record)` and `add_rewards(ids, rewards)`
    (`ControllerOracle` and `EvolutionOracle` do); for any other oracle (e.g. KerasTuner's
    random search) architectures are drawn uniformly from the space, which is random search
    with shared weights.

    State (the shared weights, their optimizer, the per-trial progress and every score) is
    saved under the tuner's project directory after each phase, so a search killed at any
    moment resumes: a trial whose training finished before the kill is not trained again.
    `best_architectures(k)` gives the best candidates seen, for standalone training.

    Example:

    ```python
    tuner = NASNetTuner(num_blocks=3, ops=ENAS_OPS, max_trials=30,
                        estimator=SharedWeights(candidates_per_trial=20))
    tuner.search(x, y, validation_data=(x_val, y_val), batch_size=64)
    ```
    """

    def __init__(self, candidates_per_trial=20, validation_batches=1, seed=0, supernet=None):
        super().__init__(seed=seed, supernet=supernet)
        for value, name in ((candidates_per_trial, "candidates_per_trial"),
                            (validation_batches, "validation_batches")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0. Received: {name}={value!r}")
        self.candidates_per_trial = candidates_per_trial
        self.validation_batches = max(1, validation_batches)
        self.epochs_done = 0
        self.progress = {}  # trial_id -> {"phase": "trained" | "rewarded", ...}
        self.candidates = []  # [values, reward] of every rewarded candidate
        self._directory = None
        self._val_cursor = 0
        self._uniform_rng = None
        self._weights_sha256 = None

    def _start_weights(self):
        # Seeded shared weights and a fresh optimizer, also for a super-network another
        # estimator compiled (reusing it skips the compilation).
        self.supernet.reinitialize(self.seed)
        self._reset_optimizer()

    # -- sampling ------------------------------------------------------------------------------
    def _sampler(self, child):
        oracle = child.oracle
        if hasattr(oracle, "sample_candidates") and hasattr(oracle, "add_rewards"):
            return oracle
        return None

    def _uniform(self, child, n):
        space = child.hypermodel.space
        if self._uniform_rng is None:
            self._uniform_rng = np.random.default_rng([self.seed, 2])
        out = []
        for _ in range(n):
            values = {}
            for cell in ("normal", "reduction"):
                for k in range(space.num_blocks):
                    for field in ("input_a", "input_b", "op_a", "op_b", "combine"):
                        options = space.options(k, field)
                        values[f"{cell}_b{k}_{field}"] = options[
                            int(self._uniform_rng.integers(len(options)))]
            out.append({"id": None, "values": values})
        return out

    def _sample(self, child, n, record):
        sampler = self._sampler(child)
        if sampler is None:
            return self._uniform(child, n)
        return sampler.sample_candidates(n, record=record)

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
            rng = np.random.default_rng([self.seed, self.epochs_done])
            cache = {}

            def arch_for_step(step):
                sample = self._sample(child, 1, record=False)[0]
                key = json.dumps(sample["values"], sort_keys=True)
                if key not in cache:
                    cache[key] = net.encode(decode(sample["values"]))
                return cache[key]

            logs = self._train_epoch(train, rng, arch_for_step, steps)
            if not all(math.isfinite(v) for v in logs.values()):
                raise keras_tuner.errors.FailedTrialError(
                    f"Trial {child.trial_id}: the shared weights diverged ({logs})."
                )
            self.epochs_done += 1
            progress.update(phase="trained", logs=logs)
            self._save()
        if progress["phase"] == "trained" and self.candidates_per_trial:
            samples = self._sample(child, self.candidates_per_trial, record=True)
            val_batches = list(val.evaluate())
            rewards = []
            for sample in samples:
                arch = net.encode(decode(sample["values"]))
                # ENAS: each candidate on the next validation minibatch(es), cycling.
                picked = [val_batches[(self._val_cursor + i) % len(val_batches)]
                          for i in range(self.validation_batches)]
                self._val_cursor = (self._val_cursor + self.validation_batches) % len(
                    val_batches)
                score = self._evaluate(val, arch, picked)
                rewards.append(score["val_accuracy"])
                self._record(score["val_accuracy"], "candidate")
                self.candidates.append([sample["values"], score["val_accuracy"]])
            progress.update(phase="rewarded")
            # Saved before the oracle hears of them: a kill after this does not redo them.
            self._save(weights_changed=False)
            sampler = self._sampler(child)
            if sampler is not None and samples:
                sampler.add_rewards([s["id"] for s in samples], rewards)
        logs = dict(progress.get("logs", {}))
        logs.update(self._evaluate(val, net.encode(child.architecture)))
        self._record(logs["val_accuracy"], "trial")
        progress.update(phase="done")
        self._save(weights_changed=False)
        callbacks = self._callbacks(child, net)
        callbacks.on_epoch_end(0, logs)
        if child.report is not None:
            child.report(logs, 0)
        return logs

    def best_architectures(self, k=5):
        """The `k` best rewarded candidates as `(values, reward)`, best first (ties: first seen)."""
        order = sorted(range(len(self.candidates)), key=lambda i: (-self.candidates[i][1], i))
        return [tuple(self.candidates[i]) for i in order[:k]]

    # -- persistence --------------------------------------------------------------------------
    def _paths(self, directory):
        return (os.path.join(directory, "shared_weights.weights.h5"),
                os.path.join(directory, "shared_optimizer.npz"),
                os.path.join(directory, "shared_state.json"))

    def save(self, directory):
        self._directory = directory
        self._save(weights_changed=False)

    def _save(self, weights_changed=True):
        """Writes the state (the weights and their optimizer too when they changed), each file
        whole: weights first, then the JSON state that names their checksum."""
        if self._directory is None or self.supernet is None:
            return
        weights, optimizer, state = self._paths(self._directory)
        if weights_changed or self._weights_sha256 is None:
            atomic_save(weights, self.supernet.save_weights)
            arrays = {f"o{i}": np.asarray(keras.ops.convert_to_numpy(v))
                      for i, v in enumerate(self.supernet.optimizer.variables)}
            atomic_write(optimizer, lambda f: np.savez(f, **arrays), binary=True,
                         suffix=".npz")
            self._weights_sha256 = weights_digest(self.supernet)
        payload = {
            "epochs_done": self.epochs_done,
            "progress": self.progress,
            "candidates": self.candidates,
            "scored": self.scored,
            "num_scored": self.num_scored,
            "val_cursor": self._val_cursor,
            "uniform_rng": None if self._uniform_rng is None
            else self._uniform_rng.bit_generator.state,
            "weights_file": os.path.basename(weights),
            "weights_sha256": self._weights_sha256,
        }
        text = json.dumps(payload, default=json_default)
        atomic_write(state, lambda f: f.write(text), suffix=".json")

    def reload(self, directory):
        self._directory = directory
        self._pending_restore = True

    def _maybe_restore(self, child):
        if not getattr(self, "_pending_restore", False):
            return
        self._pending_restore = False
        weights, optimizer, state = self._paths(self._directory)
        if not os.path.exists(state):
            return
        with open(state) as f:
            payload = json.load(f)
        self.supernet.load_weights(weights)
        self._weights_sha256 = payload["weights_sha256"]
        if weights_digest(self.supernet) != payload["weights_sha256"]:
            raise ValueError(
                f"The shared weights in {weights} do not match the checksum recorded in "
                f"{state}: the file is damaged or from another run. Delete both to start "
                "the shared weights afresh, or rerun the search with `overwrite=True`."
            )
        with np.load(optimizer) as arrays:
            for i, variable in enumerate(self.supernet.optimizer.variables):
                variable.assign(arrays[f"o{i}"])
        self.epochs_done = payload["epochs_done"]
        self.progress = payload["progress"]
        self.candidates = payload["candidates"]
        self.scored = payload["scored"]
        self.num_scored = payload["num_scored"]
        self._val_cursor = payload["val_cursor"]
        if payload["uniform_rng"] is not None:
            self._uniform_rng = np.random.default_rng()
            self._uniform_rng.bit_generator.state = payload["uniform_rng"]

    def get_config(self):
        return {"candidates_per_trial": self.candidates_per_trial,
                "validation_batches": self.validation_batches, "seed": self.seed}


_OPTIMIZER_STATES = weakref.WeakKeyDictionary()


def _fresh_optimizer_state(net):
    """The super-network's optimizer state before any step, recorded the first time it is
    seen (estimators that share a super-network reset to it)."""
    if net not in _OPTIMIZER_STATES:
        net.optimizer.build(net.trainable_variables)
        _OPTIMIZER_STATES[net] = [np.array(keras.ops.convert_to_numpy(v))
                                  for v in net.optimizer.variables]
    return _OPTIMIZER_STATES[net]


def weights_digest(model):
    """SHA-256 of a model's weight values, in order (to tell a damaged file from a good one)."""
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return digest.hexdigest()
