"""NAS tuners: KerasTuner `Tuner`s over the NASNet cell space and the 2016 layer-wise space.

`NASNetTuner` and `LayerwiseTuner` are used like any KerasTuner tuner
(`tuner.search(x, y, validation_data=..., epochs=...)`, or with `tf.data` datasets). Their
hypermodels declare the space (`tuners.nasnet_space`, `tuners.layerwise`) and build and
compile a small child per trial; the tuner decodes each trial into its architecture and hands
it to a `PerformanceEstimator` (`tuners.estimation`), which alone decides how a child is scored.
By default the trials come from a `ControllerOracle` (the RNN controller); pass `oracle=` to
use another KerasTuner oracle (e.g. `keras_tuner.oracles.RandomSearchOracle`).
"""

import json
import math
import time

import keras
import keras_tuner

from nasnet_tf import build_nasnet
from nasnet_tf.io_utils import atomic_write, read_json
from nasnet_tf.ops import check_momentum
from tuners.estimation import Child, PerformanceEstimator, TrainAndEvaluate
from tuners.layerwise import LayerwiseSearchSpace, build_layerwise_cnn
from tuners.nasnet_space import NASNetSearchSpace

__all__ = ["NASNetHyperModel", "LayerwiseHyperModel", "NASNetTuner", "LayerwiseTuner"]

_UNSET = object()
_COMPLETED = "COMPLETED"  # keras_tuner TrialStatus values are plain strings


class _ChildHyperModel(keras_tuner.HyperModel):
    """Shared part of the NAS hypermodels: the space, and how a child is compiled."""

    def __init__(
        self,
        space,
        *,
        input_shape,
        classes,
        optimizer,
        loss,
        metrics,
        compile_kwargs,
        batch_norm_momentum,
        name,
    ):
        super().__init__(name=name)
        self.space = space
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in input_shape
        ):
            raise ValueError(
                "`input_shape` must be (height, width, channels) of positive integers. "
                f"Received: input_shape={input_shape}"
            )
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
            raise ValueError(f"`classes` must be an integer >= 1. Received: classes={classes!r}")
        if not (
            isinstance(optimizer, (str, keras.optimizers.Optimizer)) or callable(optimizer)
        ):
            raise ValueError(
                "`optimizer` must be an optimizer name, a `keras.optimizers.Optimizer` (copied "
                "for each child) or a callable returning one. "
                f"Received: optimizer={optimizer!r}"
            )
        self.input_shape = input_shape
        self.classes = classes
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = list(metrics or [])
        if compile_kwargs is not None and not isinstance(compile_kwargs, dict):
            raise ValueError(
                "`compile_kwargs` must be a dict or None. "
                f"Received: compile_kwargs={compile_kwargs!r}"
            )
        clash = {"optimizer", "loss", "metrics"} & set(compile_kwargs or {})
        if clash:
            raise ValueError(
                f"`compile_kwargs` must not set {sorted(clash)}: pass them as arguments of the "
                f"hypermodel. Received: compile_kwargs={compile_kwargs!r}"
            )
        self.compile_kwargs = dict(compile_kwargs or {})
        if batch_norm_momentum is not None:  # None keeps the child builder's own value
            check_momentum(batch_norm_momentum, "batch_norm_momentum")
        self.batch_norm_momentum = batch_norm_momentum

    def declare_hyperparameters(self, hp):
        self.space.declare(hp)

    def decode(self, hp):
        """The architecture of a trial's hyperparameters (or values dict)."""
        return self.space.decode(hp)

    def encode(self, architecture):
        """The hyperparameter values of an architecture of this space."""
        return self.space.encode(architecture)

    def build_child(self, architecture):
        """The uncompiled Keras model of `architecture`."""
        raise NotImplementedError

    def _make_optimizer(self):
        if isinstance(self.optimizer, str):
            return self.optimizer
        if isinstance(self.optimizer, keras.optimizers.Optimizer):
            # Each child needs fresh optimizer variables; copy the configuration only.
            return keras.optimizers.deserialize(keras.optimizers.serialize(self.optimizer))
        return self.optimizer()

    def build(self, hp):
        model = self.build_child(self.space.declare(hp))
        model.compile(
            optimizer=self._make_optimizer(),
            loss=self.loss,
            metrics=self.metrics,
            **self.compile_kwargs,
        )
        return model


class NASNetHyperModel(_ChildHyperModel):
    """Builds and compiles a small NASNet child (CIFAR layout) for each NASNet cell genotype.

    Args:
        space: a `NASNetSearchSpace`; by default one made of `num_blocks`, `ops` and
            `combine_ops`.
        num_blocks, ops, combine_ops: the space's arguments, when `space` is not given.
        num_cells: N, normal cells per stage of the child (the paper's search: 2).
        penultimate_filters: P of the child (a multiple of 24).
        input_shape: the images' `(height, width, channels)`.
        classes: number of classes.
        optimizer: an optimizer name, a `keras.optimizers.Optimizer` (its configuration is
            copied for each child) or a callable returning a new optimizer.
        loss: the loss (the default expects integer labels).
        metrics: metrics to compile; the objective (e.g. `val_accuracy`) must be among them.
        compile_kwargs: further `compile` arguments (e.g. `{"run_eagerly": True}`, which
            skips graph tracing: cheaper on CPU for children trained a few dozen steps).
        batch_norm_momentum: the momentum of every batch normalization of a child (default
            0.9), or None to keep the builder's (slim's 0.9997, made for 20+ epochs). Brief
            training leaves slow moving statistics near their initial values, which puts
            every child's validation accuracy at chance.
        build_kwargs: further `build_nasnet` arguments (e.g. `stem_multiplier`); children
            have no auxiliary head and no drop path unless given here.

    Example:

    >>> import keras_tuner
    >>> hypermodel = NASNetHyperModel(num_blocks=2, num_cells=1, penultimate_filters=24,
    ...                               input_shape=(8, 8, 3), classes=4)
    >>> model = hypermodel.build(keras_tuner.HyperParameters())
    >>> model.output_shape
    (None, 4)
    """

    def __init__(
        self,
        space=None,
        *,
        num_blocks=_UNSET,
        ops=_UNSET,
        combine_ops=_UNSET,
        num_cells=2,
        penultimate_filters=96,
        input_shape=(32, 32, 3),
        classes=10,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=("accuracy",),
        compile_kwargs=None,
        batch_norm_momentum=0.9,
        build_kwargs=None,
        name="nasnet_child",
    ):
        space_args = _given(num_blocks=num_blocks, ops=ops, combine_ops=combine_ops)
        if space is None:
            space = NASNetSearchSpace(**space_args)
        elif not isinstance(space, NASNetSearchSpace):
            raise ValueError(f"`space` must be a `NASNetSearchSpace`. Received: space={space!r}")
        elif space_args:
            raise ValueError(
                f"Pass either `space` or its arguments, not both. Received: space={space!r} "
                f"and {space_args}"
            )
        super().__init__(
            space,
            input_shape=input_shape,
            classes=classes,
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            compile_kwargs=compile_kwargs,
            batch_norm_momentum=batch_norm_momentum,
            name=name,
        )
        self.num_cells = num_cells
        self.penultimate_filters = penultimate_filters
        if build_kwargs is not None and not isinstance(build_kwargs, dict):
            raise ValueError(
                f"`build_kwargs` must be a dict or None. Received: build_kwargs={build_kwargs!r}"
            )
        reserved = {
            "genotype", "num_cells", "penultimate_filters", "input_shape", "classes",
            "batch_norm_momentum",
        }
        clash = reserved & set(build_kwargs or {})
        if clash:
            raise ValueError(
                f"`build_kwargs` must not set {sorted(clash)}: they are arguments of "
                f"NASNetHyperModel itself. Received: build_kwargs={build_kwargs!r}"
            )
        self.build_kwargs = {
            "preset": "cifar",
            "auxiliary_head": False,
            "drop_path_keep_prob": 1.0,
            **(build_kwargs or {}),
        }

    def build_child(self, architecture):
        kwargs = dict(self.build_kwargs)
        if self.batch_norm_momentum is not None:
            # Children train for a few hundred steps at most: with slim's momentum (0.9997)
            # the moving statistics would stay near their initial values and every child
            # would score at chance on validation data.
            kwargs["batch_norm_momentum"] = float(self.batch_norm_momentum)
        return build_nasnet(
            architecture,
            num_cells=self.num_cells,
            penultimate_filters=self.penultimate_filters,
            input_shape=self.input_shape,
            classes=self.classes,
            **kwargs,
        )


class LayerwiseHyperModel(_ChildHyperModel):
    """Builds and compiles the CNN of each layer-wise (2016 NAS) architecture.

    Args:
        space: a `LayerwiseSearchSpace`; by default one made of the space arguments.
        num_layers, filter_sizes, filters, strides, skip_connections: the space's arguments,
            when `space` is not given.
        input_shape, classes, optimizer, loss, metrics, compile_kwargs, batch_norm_momentum:
            as for `NASNetHyperModel`.

    Example:

    >>> import keras_tuner
    >>> hypermodel = LayerwiseHyperModel(num_layers=3, input_shape=(8, 8, 3), classes=4)
    >>> hypermodel.build(keras_tuner.HyperParameters()).output_shape
    (None, 4)
    """

    def __init__(
        self,
        space=None,
        *,
        num_layers=_UNSET,
        filter_sizes=_UNSET,
        filters=_UNSET,
        strides=_UNSET,
        skip_connections=_UNSET,
        input_shape=(32, 32, 3),
        classes=10,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=("accuracy",),
        compile_kwargs=None,
        batch_norm_momentum=0.9,
        name="layerwise_child",
    ):
        space_args = _given(
            num_layers=num_layers,
            filter_sizes=filter_sizes,
            filters=filters,
            strides=strides,
            skip_connections=skip_connections,
        )
        if space is None:
            space = LayerwiseSearchSpace(**space_args)
        elif not isinstance(space, LayerwiseSearchSpace):
            raise ValueError(
                f"`space` must be a `LayerwiseSearchSpace`. Received: space={space!r}"
            )
        elif space_args:
            raise ValueError(
                f"Pass either `space` or its arguments, not both. Received: space={space!r} "
                f"and {space_args}"
            )
        super().__init__(
            space,
            input_shape=input_shape,
            classes=classes,
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            compile_kwargs=compile_kwargs,
            batch_norm_momentum=batch_norm_momentum,
            name=name,
        )

    def build_child(self, architecture):
        kwargs = {}
        if self.batch_norm_momentum is not None:
            kwargs["batch_norm_momentum"] = float(self.batch_norm_momentum)
        return build_layerwise_cnn(
            architecture, input_shape=self.input_shape, classes=self.classes, **kwargs
        )


def _given(**kwargs):
    return {k: v for k, v in kwargs.items() if v is not _UNSET}


class _TimeBudgetSpent(Exception):
    """Ends `_NASTuner.search`'s trial loop once its `max_minutes` have passed."""


class _NASTuner(keras_tuner.Tuner):
    """Shared part of the NAS tuners: oracle defaults, the estimator, genotype results."""

    def __init__(
        self,
        hypermodel,
        *,
        oracle,
        objective,
        max_trials,
        seed,
        oracle_kwargs,
        max_retries_per_trial,
        max_consecutive_failed_trials,
        estimator,
        **kwargs,
    ):
        oracle_args = _given(
            objective=objective,
            max_trials=max_trials,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        if oracle is None:
            from tuners.oracle import ControllerOracle

            oracle_args.setdefault("objective", "val_accuracy")
            oracle_args.setdefault("max_trials", 20)
            oracle = ControllerOracle(**oracle_args, **(oracle_kwargs or {}))
        elif oracle_args or oracle_kwargs:
            given = sorted(oracle_args) + (["oracle_kwargs"] if oracle_kwargs else [])
            raise ValueError(
                f"With `oracle` given, set {given} on that oracle instead. Received: "
                f"oracle={oracle!r} and {given}"
            )
        if estimator is None:
            # Seeded children: the same search with the same seed gives the same scores.
            seeded = isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0
            estimator = TrainAndEvaluate(seed=seed if seeded else None)
        if not isinstance(estimator, PerformanceEstimator):
            raise ValueError(
                "`estimator` must be a `tuners.estimation.PerformanceEstimator`. "
                f"Received: estimator={estimator!r}"
            )
        self.estimator = estimator
        super().__init__(oracle, hypermodel, **kwargs)

    def _populate_initial_space(self):
        # The NAS spaces have no conditional scopes, so declaring them is enough; KerasTuner's
        # default would also build one child just to discover the space (~10 s under JAX).
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def search(self, *fit_args, max_minutes=None, **fit_kwargs):
        """Runs the search: `fit_args` / `fit_kwargs` go to the estimator (by default to each
        child's `fit`), e.g. `search(x, y, validation_data=(x_val, y_val), epochs=1)`.

        Args:
            *fit_args, **fit_kwargs: the estimator's (by default `fit`'s) arguments.
            max_minutes: an optional wall-time budget, as NNI's `maxExperimentDuration`: no
                trial starts once `max_minutes` have passed since the start of this call
                (the running trial finishes), and the search ends as at its normal end
                (`on_search_end` runs; the oracle's state is saved after every trial).
                `self.stopped_by_time_budget` then says whether the budget ended it. A
                resumed search (same directory, `overwrite=False`) gets the whole budget
                again: its earlier trials count toward `max_trials` only. In KerasTuner's
                distributed mode each worker counts from its own `search()` call.

        Example:

        ```python
        tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, max_minutes=30)
        if tuner.stopped_by_time_budget:
            print(len(tuner.oracle.trials), "trials in 30 minutes")
        ```
        """
        if max_minutes is not None and (
            isinstance(max_minutes, bool)
            or not isinstance(max_minutes, (int, float))
            or not (max_minutes > 0 and math.isfinite(max_minutes))
        ):
            raise ValueError(
                "`max_minutes` must be a number of minutes > 0, or None for no time budget. "
                f"Received: max_minutes={max_minutes!r}"
            )
        objective = getattr(self.oracle.objective, "name", "")
        if (
            isinstance(self.estimator, TrainAndEvaluate)
            and self.estimator.evaluation_data is None
            and objective.startswith("val_")
            and fit_kwargs.get("validation_data") is None
            and not fit_kwargs.get("validation_split")
        ):
            raise ValueError(
                f"The objective {objective!r} is a validation metric: pass `validation_data=` "
                "(or `validation_split=`) to `search()`, or give the estimator "
                f"`evaluation_data`. Received: search() keyword arguments {sorted(fit_kwargs)}"
            )
        self.stopped_by_time_budget = False
        self._search_deadline = (
            None if max_minutes is None else time.monotonic() + 60.0 * max_minutes
        )
        try:
            super().search(*fit_args, **fit_kwargs)
        except _TimeBudgetSpent:
            # Raised before a trial was created: nothing is half-done, so end as KerasTuner's
            # loop does when the oracle stops.
            self.stopped_by_time_budget = True
            self.on_search_end()
        finally:
            self._search_deadline = None

    def pre_create_trial(self):
        super().pre_create_trial()
        deadline = getattr(self, "_search_deadline", None)
        if deadline is not None and time.monotonic() >= deadline:
            raise _TimeBudgetSpent()

    def _build_and_fit_model(self, trial, *args, **kwargs):
        # KerasTuner's override point for one execution of a trial: `run_trial` has added its
        # reporting and checkpoint callbacks; scoring belongs to the estimator alone.
        hp = trial.hyperparameters
        child = Child(
            architecture=self.hypermodel.decode(hp),
            hyperparameters=hp,
            build=lambda: self._try_build(hp),
            trial_id=trial.trial_id,
            directory=self.get_trial_dir(trial.trial_id),
            callbacks=list(kwargs.pop("callbacks", [])),
            hypermodel=self.hypermodel,
            oracle=self.oracle,
            report=lambda metrics, step: self.oracle.update_trial(
                trial.trial_id, {k: float(v) for k, v in metrics.items()}, step=step
            ),
        )
        return self.estimator.estimate(child, *args, **kwargs)

    controller_scalars = None
    """Optional `tuners.tensorboard_log.ControllerScalars`, written at each trial end."""

    def on_search_begin(self):
        super().on_search_begin()
        # KerasTuner writes `tuner0.json` at the first trial's end, and reloads a project only
        # when that file exists: without this, a search killed during its first trial would
        # start over instead of resuming it.
        self.save()

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        # Workers hold an oracle client, not the oracle: the chief's files are the record.
        if self.controller_scalars is not None and not self._is_worker():
            self.controller_scalars.write(self.oracle)

    def save(self):
        # As KerasTuner's `BaseTuner.save`, but `tuner0.json` is written whole: KerasTuner
        # writes it in place, and a kill during that write left an empty file that made the
        # restart fail.
        if not self._is_worker():
            self.oracle.save()
            self.estimator.save(self.project_dir)
        state = json.dumps(self.get_state())
        atomic_write(self._get_tuner_fname(), lambda f: f.write(state), suffix=".json",
                     checksum=True)

    def reload(self):
        # As KerasTuner's `BaseTuner.reload`, with `tuner0.json` read with a check: a damaged
        # file is a one-line error naming it, not a bare JSON decoder message.
        if not self._is_worker():
            self.oracle.reload()
        self.set_state(read_json(self._get_tuner_fname()))
        if not self._is_worker():
            self.estimator.reload(self.project_dir)

    def get_best_genotypes(self, num_genotypes=1):
        """The architectures of the best completed trials, best first.

        Args:
            num_genotypes: how many to return at most.

        Returns:
            A list of architectures (`Genotype` for `NASNetTuner`, `LayerwiseGenotype` for
            `LayerwiseTuner`); shorter than `num_genotypes` when fewer trials completed.
        """
        trials = self.oracle.get_best_trials(num_genotypes)
        return [
            self.hypermodel.decode(t.hyperparameters)
            for t in trials
            if t.status == _COMPLETED
        ]

    def export_best_genotype(self, filepath):
        """Writes the best architecture as JSON to `filepath` (whole or not at all)."""
        best = self.get_best_genotypes(1)
        if not best:
            raise ValueError(
                "No trial has completed yet, so there is no best genotype to export. "
                f"Received: {len(self.oracle.trials)} trials, none COMPLETED"
            )
        atomic_write(filepath, lambda f: f.write(best[0].to_json(indent=2)), suffix=".json")
        return best[0]

    def results_summary(self, num_trials=10):
        """Prints the best trials with their architectures, readably.

        Args:
            num_trials: how many of the best completed trials to show.
        """
        statuses = {}
        for trial in self.oracle.trials.values():
            statuses[trial.status] = statuses.get(trial.status, 0) + 1
        objective = self.oracle.objective
        print("Results summary")
        print(f"Results in {self.project_dir}")
        print(f"Objective: {objective.name} ({objective.direction})")
        print("Trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(statuses.items())))
        best = [t for t in self.oracle.get_best_trials(num_trials) if t.status == _COMPLETED]
        print(f"Showing {len(best)} best trials")
        for rank, trial in enumerate(best, 1):
            architecture = self.hypermodel.decode(trial.hyperparameters)
            print()
            print(f"#{rank} trial {trial.trial_id}: {objective.name} = {trial.score:.4f}")
            print(f"  {architecture}")
        failed = [
            t for t in self.oracle.trials.values()
            if t.status in ("FAILED", "INVALID") and t.message
        ]
        if failed:
            print()
            print(f"{len(failed)} failed trials; the last error:")
            print("  " + failed[-1].message.strip().splitlines()[-1])


class NASNetTuner(_NASTuner):
    """Searches the NASNet cell space (Zoph et al. 2018) with KerasTuner.

    Each trial is one Normal + Reduction cell genotype (2 x 5 x B decisions, see
    `tuners.nasnet_space`), built as a small CIFAR-layout NASNet (`num_cells` normal cells per
    stage, `penultimate_filters`), scored by `estimator` (default: train with `fit` on the
    data given to `search()`, report its validation metrics).

    Args:
        hypermodel: a `NASNetHyperModel`; by default one made of the child arguments below.
        num_blocks, ops, combine_ops, num_cells, penultimate_filters, input_shape, classes,
            optimizer, loss, metrics, compile_kwargs, batch_norm_momentum: `NASNetHyperModel`
            arguments, when
            `hypermodel` is not given (the defaults are `NASNetHyperModel`'s: B=5, all 13
            ops, add and concat, N=2, P=96, 32x32x3 inputs, 10 classes).
        oracle: a KerasTuner `Oracle`; by default a `tuners.oracle.ControllerOracle`.
        objective: the objective when `oracle` is not given (default `"val_accuracy"`).
        max_trials: the trial budget when `oracle` is not given (default 20).
        seed: the default oracle's seed.
        oracle_kwargs: further `ControllerOracle` arguments (e.g. `update_every`, `units`).
        max_retries_per_trial, max_consecutive_failed_trials: as for KerasTuner's oracles.
        estimator: a `tuners.estimation.PerformanceEstimator` (default `TrainAndEvaluate()`).
        **kwargs: `keras_tuner.Tuner` arguments (`directory`, `project_name`, `overwrite`,
            `executions_per_trial`, `max_model_size`, ...).

    Example:

    ```python
    tuner = NASNetTuner(num_blocks=2, num_cells=1, penultimate_filters=24,
                        input_shape=(8, 8, 3), classes=4, max_trials=2,
                        directory="/tmp/nas", overwrite=True)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    tuner.results_summary()
    best_genotype = tuner.get_best_genotypes(1)[0]
    model = nasnet_tf.build_nasnet(best_genotype, preset="cifar")
    ```
    """

    def __init__(
        self,
        hypermodel=None,
        *,
        num_blocks=_UNSET,
        ops=_UNSET,
        combine_ops=_UNSET,
        num_cells=_UNSET,
        penultimate_filters=_UNSET,
        input_shape=_UNSET,
        classes=_UNSET,
        optimizer=_UNSET,
        loss=_UNSET,
        metrics=_UNSET,
        compile_kwargs=_UNSET,
        batch_norm_momentum=_UNSET,
        oracle=None,
        objective=_UNSET,
        max_trials=_UNSET,
        seed=_UNSET,
        oracle_kwargs=None,
        max_retries_per_trial=_UNSET,
        max_consecutive_failed_trials=_UNSET,
        estimator=None,
        **kwargs,
    ):
        child_args = _given(
            num_blocks=num_blocks,
            ops=ops,
            combine_ops=combine_ops,
            num_cells=num_cells,
            penultimate_filters=penultimate_filters,
            input_shape=input_shape,
            classes=classes,
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            compile_kwargs=compile_kwargs,
            batch_norm_momentum=batch_norm_momentum,
        )
        hypermodel = _resolve_hypermodel(hypermodel, NASNetHyperModel, child_args)
        super().__init__(
            hypermodel,
            oracle=oracle,
            objective=objective,
            max_trials=max_trials,
            seed=seed,
            oracle_kwargs=oracle_kwargs,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            estimator=estimator,
            **kwargs,
        )


class LayerwiseTuner(_NASTuner):
    """Searches the 2016 layer-wise CNN space (Zoph & Le, 1611.01578) with KerasTuner.

    Args:
        hypermodel: a `LayerwiseHyperModel`; by default one made of the arguments below.
        num_layers, filter_sizes, filters, strides, skip_connections, input_shape, classes,
            optimizer, loss, metrics, compile_kwargs, batch_norm_momentum:
            `LayerwiseHyperModel` arguments, when
            `hypermodel` is not given (defaults: 6 layers, sizes (1, 3, 5, 7), filters
            (24, 36, 48, 64), stride fixed at 1, skip connections searched, 32x32x3 inputs,
            10 classes).
        oracle, objective, max_trials, seed, oracle_kwargs, max_retries_per_trial,
            max_consecutive_failed_trials, estimator, **kwargs: as for `NASNetTuner`.

    Example:

    ```python
    tuner = LayerwiseTuner(num_layers=3, input_shape=(8, 8, 3), classes=4, max_trials=2,
                           directory="/tmp/nas2016", overwrite=True)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    best = tuner.get_best_genotypes(1)[0]
    model = tuners.layerwise.build_layerwise_cnn(best, input_shape=(8, 8, 3), classes=4)
    ```
    """

    def __init__(
        self,
        hypermodel=None,
        *,
        num_layers=_UNSET,
        filter_sizes=_UNSET,
        filters=_UNSET,
        strides=_UNSET,
        skip_connections=_UNSET,
        input_shape=_UNSET,
        classes=_UNSET,
        optimizer=_UNSET,
        loss=_UNSET,
        metrics=_UNSET,
        compile_kwargs=_UNSET,
        batch_norm_momentum=_UNSET,
        oracle=None,
        objective=_UNSET,
        max_trials=_UNSET,
        seed=_UNSET,
        oracle_kwargs=None,
        max_retries_per_trial=_UNSET,
        max_consecutive_failed_trials=_UNSET,
        estimator=None,
        **kwargs,
    ):
        child_args = _given(
            num_layers=num_layers,
            filter_sizes=filter_sizes,
            filters=filters,
            strides=strides,
            skip_connections=skip_connections,
            input_shape=input_shape,
            classes=classes,
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            compile_kwargs=compile_kwargs,
            batch_norm_momentum=batch_norm_momentum,
        )
        hypermodel = _resolve_hypermodel(hypermodel, LayerwiseHyperModel, child_args)
        super().__init__(
            hypermodel,
            oracle=oracle,
            objective=objective,
            max_trials=max_trials,
            seed=seed,
            oracle_kwargs=oracle_kwargs,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            estimator=estimator,
            **kwargs,
        )


def _resolve_hypermodel(hypermodel, cls, child_args):
    if hypermodel is None:
        return cls(**child_args)
    if not isinstance(hypermodel, cls):
        raise ValueError(
            f"`hypermodel` must be a `{cls.__name__}` (or None to build one from the child "
            f"arguments). Received: hypermodel={hypermodel!r}"
        )
    if child_args:
        raise ValueError(
            f"With `hypermodel` given, set {sorted(child_args)} on that hypermodel instead. "
            f"Received: hypermodel={hypermodel!r} and {sorted(child_args)}"
        )
    return hypermodel
