"""One NAS tuner, `NASTuner`, shaped like KerasTuner's: the hypermodel is the search space.

`NASTuner(hypermodel, oracle=None, *, estimator=None, ...)` is used like any KerasTuner tuner
(`tuner.search(x, y, validation_data=..., epochs=...)`, or with `tf.data` datasets). Its
hypermodel, `NASNetHyperModel` (the NASNet cell space, `tuners.nasnet_space`) or
`LayerwiseHyperModel` (the 2016 layer-wise space, `tuners.layerwise_space`), declares the space and
builds and compiles a small child per trial; the tuner decodes each trial into its
architecture and hands it to a `PerformanceEstimator` (`tuners.estimation`), which alone
decides how a child is scored (by default: build it, train it through the public
`HyperModel.fit` hook, report its validation metrics). By default the trials come from a
`ControllerOracle` (the RNN controller); pass `oracle=` to use another KerasTuner oracle (e.g.
`keras_tuner.oracles.RandomSearchOracle`). `NASNetTuner` and `LayerwiseTuner` are
conveniences that make the hypermodel from its own keyword arguments.
"""

import inspect
import json
import math
import os
import time

import keras
import keras_tuner

from nasnet_tf import build_nasnet, validators
from nasnet_tf.io_utils import atomic_write, read_json, remove_temporaries
from nasnet_tf.layerwise import build_layerwise_cnn
from tuners.chief_worker import ReconnectingClient, is_worker
from tuners.estimation import Child, PerformanceEstimator, TrainAndEvaluate
from tuners.final_selection import FinalSelection
from tuners.layerwise_space import LayerwiseSearchSpace
from tuners.listeners import check_listeners
from tuners.nasnet_space import NASNetSearchSpace
from tuners.reward_oracle import RewardOracle, kept_seed
from tuners.weight_sharing import SharedWeights

__all__ = [
    "LayerwiseHyperModel",
    "LayerwiseTuner",
    "NASNetHyperModel",
    "NASNetTuner",
    "NASTuner",
]

_UNSET = object()
# The temporary files of `tuner0.json` writes (swept by the next process that writes it).
TUNER_TMP_PREFIX = ".tmp-tuner_"
_COMPLETED = "COMPLETED"  # keras_tuner TrialStatus values are plain strings


def _space(space, space_args, space_class):
    """`space`, or a `space_class` built from `space_args`; never both."""
    if space is None:
        return space_class(**space_args)
    if not isinstance(space, space_class):
        raise ValueError(
            f"`space` must be a `{space_class.__name__}`. Received: space={space!r}")
    if space_args:
        raise ValueError(
            f"Pass either `space` or its arguments, not both. Received: space={space!r} "
            f"and {space_args}"
        )
    return space


class _ChildHyperModel(keras_tuner.HyperModel):
    """Shared part of the NAS hypermodels: the space, and how a child is compiled.

    Its keyword arguments (and their defaults) are those every hypermodel takes: see
    `NASNetHyperModel`; the hypermodels pass them on as `**kwargs`.
    """

    def __init__(
        self,
        space,
        *,
        input_shape=(32, 32, 3),
        classes=10,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=("accuracy",),
        compile_kwargs=None,
        batch_norm_momentum=0.9,
        name=None,
    ):
        super().__init__(name=name)
        self.space = space
        input_shape = validators.input_shape(input_shape)
        classes = validators.positive_int(classes, "classes")
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
            batch_norm_momentum = validators.momentum(batch_norm_momentum, "batch_norm_momentum")
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

    def make_optimizer(self):
        """A new optimizer of this hypermodel's setting (one per model: never shared)."""
        if isinstance(self.optimizer, str):
            return self.optimizer
        if isinstance(self.optimizer, keras.optimizers.Optimizer):
            # Each child needs fresh optimizer variables; copy the configuration only.
            return keras.optimizers.deserialize(keras.optimizers.serialize(self.optimizer))
        return self.optimizer()

    def build(self, hp):
        model = self.build_child(self.space.declare(hp))
        model.compile(
            optimizer=self.make_optimizer(),
            loss=self.loss,
            metrics=self.metrics,
            **self.compile_kwargs,
        )
        # Built now, so that a trial's checkpoint (weights and optimizer state) loads whole
        # into a rebuilt child (`Tuner.get_best_models`), without Keras' warning that the
        # optimizer's variables were skipped.
        model.optimizer.build(model.trainable_variables)
        return model


class NASNetHyperModel(_ChildHyperModel):
    """Builds and compiles a small NASNet child (CIFAR layout) for each NASNet cell genotype.

    The NASNet cell space as a `NASTuner`'s hypermodel: it declares the space's
    hyperparameters, decodes a trial into its `Genotype`, and builds its child. Override
    `fit(hp, model, *args, **kwargs)` (KerasTuner's hook, by default `model.fit`) to change
    how `TrainAndEvaluate` trains each child.

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
        num_blocks=_UNSET, ops=_UNSET, combine_ops=_UNSET,  # the space's, unless `space`
        num_cells=2,
        penultimate_filters=96,
        build_kwargs=None,
        name="nasnet_child",
        **kwargs,
    ):
        space_args = validators.given(
            _UNSET, num_blocks=num_blocks, ops=ops, combine_ops=combine_ops
        )
        super().__init__(_space(space, space_args, NASNetSearchSpace), name=name, **kwargs)
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

    The layer-wise space as a `NASTuner`'s hypermodel (see `NASNetHyperModel`); its children
    are `nasnet_tf.build_layerwise_cnn` networks.

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
        name="layerwise_child",
        **kwargs,
    ):
        space_args = validators.given(
            _UNSET,
            num_layers=num_layers,
            filter_sizes=filter_sizes,
            filters=filters,
            strides=strides,
            skip_connections=skip_connections,
        )
        super().__init__(_space(space, space_args, LayerwiseSearchSpace), name=name, **kwargs)

    def build_child(self, architecture):
        kwargs = {}
        if self.batch_norm_momentum is not None:
            kwargs["batch_norm_momentum"] = float(self.batch_norm_momentum)
        return build_layerwise_cnn(
            architecture, input_shape=self.input_shape, classes=self.classes, **kwargs
        )


class _TimeBudgetSpent(Exception):
    """Ends `NASTuner.search`'s trial loop once its `max_minutes` have passed."""


class NASTuner(keras_tuner.Tuner):
    """A KerasTuner `Tuner` that searches a NAS space: the hypermodel is the space.

    Used like `keras_tuner.RandomSearch`: the oracle arguments once, everything else through
    `**kwargs` to `keras_tuner.Tuner`. Each trial is decoded into its architecture (a NASNet
    `Genotype` or a `LayerwiseGenotype`) and handed to `estimator`, which alone decides how a
    child is scored. The default, `TrainAndEvaluate`, builds the child with the hypermodel and
    trains it through the hypermodel's public `fit(hp, model, *args, **kwargs)` hook
    (`keras_tuner.HyperModel.fit`: override it to customise a child's training), seeding
    each child from the search seed and the trial id: the same seed gives the same scores.

    Args:
        hypermodel: the space and its children: a `NASNetHyperModel` or a
            `LayerwiseHyperModel` (or a subclass).
        oracle: a KerasTuner `Oracle` (e.g. `tuners.EvolutionOracle`,
            `keras_tuner.oracles.RandomSearchOracle`); by default a
            `tuners.controller_oracle.ControllerOracle` made of the oracle arguments below.
        estimator: a `tuners.estimation.PerformanceEstimator`; by default
            `TrainAndEvaluate(seed=...)` seeded with `seed`, else with the oracle's `seed`
            attribute (KerasTuner's oracles draw a random one for a seed of None or 0).
        objective: the default oracle's objective (default `"val_accuracy"`).
        max_trials: the default oracle's trial budget (default 20).
        seed: int or None, the default oracle's seed, and the default estimator's.
        oracle_kwargs: further `ControllerOracle` arguments (e.g. `update_every`, `units`).
        max_retries_per_trial, max_consecutive_failed_trials: the default oracle's, as for
            KerasTuner's oracles.
        final_selection: a `tuners.FinalSelection` run after the last trial (its ranking
            in `final_ranking`, and what `get_best_genotypes` returns), None for none, or
            `"auto"` (default): `FinalSelection()` with a `SharedWeights` or `FreshWeights`
            estimator, whose trial scores are estimates, none otherwise.
        listeners: a list of `tuners.SearchListener`s, called in order at the search's
            events (a search begins or ends, a trial begins or ends, a child is built);
            e.g. `tuners.search_outputs.TrialTable` or `TensorBoardScalars`.
        **kwargs: `keras_tuner.Tuner` arguments (`directory`, `project_name`, `overwrite`,
            `executions_per_trial`, `max_model_size`, ...).

    With `oracle` given, the oracle arguments (`objective` to `max_consecutive_failed_trials`)
    belong to that oracle and are refused here.

    Example:

    ```python
    hypermodel = NASNetHyperModel(num_blocks=2, num_cells=1, penultimate_filters=24,
                                  input_shape=(8, 8, 3), classes=4)
    tuner = NASTuner(hypermodel, max_trials=2, seed=0, directory="/tmp/nas",
                     overwrite=True)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    tuner.results_summary()
    best_genotype = tuner.get_best_genotypes(1)[0]
    model = nasnet_tf.build_nasnet(best_genotype, preset="cifar")
    ```
    """

    def __init__(
        self,
        hypermodel,
        oracle=None,
        *,
        estimator=None,
        objective=None,
        max_trials=None,
        seed=None,
        oracle_kwargs=None,
        max_retries_per_trial=None,
        max_consecutive_failed_trials=None,
        final_selection="auto",
        listeners=None,
        **kwargs,
    ):
        if not isinstance(hypermodel, _ChildHyperModel):
            raise ValueError(
                "`hypermodel` must be a `NASNetHyperModel` or a `LayerwiseHyperModel` (the "
                f"space to search). Received: hypermodel={hypermodel!r}"
            )
        oracle_args = validators.given(
            objective=objective,
            max_trials=max_trials,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        if oracle is None:
            from tuners.controller_oracle import ControllerOracle

            oracle_args.setdefault("objective", "val_accuracy")
            oracle_args.setdefault("max_trials", 20)
            oracle = ControllerOracle(**oracle_args, **(oracle_kwargs or {}))
        elif oracle_args or oracle_kwargs:
            given = sorted(oracle_args) + (["oracle_kwargs"] if oracle_kwargs else [])
            raise ValueError(
                f"With `oracle` given, set {given} on that oracle instead. Received: "
                f"oracle={oracle!r} and {given}"
            )
        seed = kept_seed(seed, oracle)
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
        if final_selection == "auto":
            from tuners.weight_sharing import FreshWeights, SharedWeights

            final_selection = (FinalSelection(seed=estimator.seed) if isinstance(
                estimator, (SharedWeights, FreshWeights)) else None)
        if final_selection is not None and not isinstance(final_selection, FinalSelection):
            raise ValueError(
                "`final_selection` must be a `tuners.FinalSelection`, 'auto' or None. "
                f"Received: final_selection={final_selection!r}"
            )
        self.final_selection = final_selection
        self.final_ranking = None
        self.listeners = check_listeners(listeners)
        super().__init__(oracle, hypermodel, **kwargs)
        if is_worker():
            # KerasTuner made `self.oracle` a gRPC client of the chief: ride out its restarts.
            self.oracle = ReconnectingClient(self.oracle)
        elif getattr(estimator, "repeats_are_informative", False) and isinstance(
            self.oracle, RewardOracle
        ):
            # Under shared weights a repeated architecture is scored again with newer
            # weights: information, not a collision.
            self.oracle.rescore_repeats = True

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
        if self.final_selection is not None and not self._is_worker():
            self.final_ranking = self.final_selection.run(self, *fit_args, **fit_kwargs)
            if isinstance(self.estimator, SharedWeights):
                self.estimator.final_ranking = self.final_ranking
                self.estimator.save(self.project_dir)
        for listener in self.listeners:
            listener.search_ended(self)

    def pre_create_trial(self):
        super().pre_create_trial()
        deadline = getattr(self, "_search_deadline", None)
        if deadline is not None and time.monotonic() >= deadline:
            raise _TimeBudgetSpent()

    def _build_and_fit_model(self, trial, *args, **kwargs):
        # KerasTuner's override point for one execution of a trial: `run_trial` has added its
        # reporting and checkpoint callbacks; scoring belongs to the estimator alone. The child
        # is built lazily (`child.build`), only by estimators that train it standalone
        # (`TrainAndEvaluate`, which then trains it through `self.hypermodel.fit`, as
        # KerasTuner's own `_build_and_fit_model` does); the super-network estimators never
        # build it.
        hp = trial.hyperparameters
        child = Child(
            architecture=self.hypermodel.decode(hp),
            hyperparameters=hp,
            build=lambda: self._child_built(trial, self._try_build(hp)),
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

    def _child_built(self, trial, model):
        for listener in self.listeners:
            listener.child_built(self, trial, model)
        return model

    def on_search_begin(self):
        super().on_search_begin()
        # KerasTuner writes `tuner0.json` at the first trial's end, and reloads a project only
        # when that file exists: without this, a search killed during its first trial would
        # start over instead of resuming it.
        self.save()
        for listener in self.listeners:
            listener.search_began(self)

    def on_trial_begin(self, trial):
        for listener in self.listeners:
            listener.trial_began(self, trial)
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        for listener in self.listeners:
            listener.trial_ended(self, trial)

    def save(self):
        # As KerasTuner's `BaseTuner.save`, but `tuner0.json` is written whole: KerasTuner
        # writes it in place, and a kill during that write left an empty file that made the
        # restart fail.
        if not self._is_worker():
            self.oracle.save()
            self.estimator.save(self.project_dir)
        state = json.dumps(self.get_state())
        fname = self._get_tuner_fname()
        # Written at every trial's end, and KerasTuner's tuner state does not change: write it
        # (synced) when it changed since this process last wrote it, or is gone.
        if state == getattr(self, "_saved_tuner_state", None) and os.path.exists(fname):
            return
        if not hasattr(self, "_saved_tuner_state"):
            # This process's first write: a kill during an earlier one left its temporary file.
            remove_temporaries(self.project_dir, prefix=TUNER_TMP_PREFIX)
        atomic_write(fname, lambda f: f.write(state), prefix=TUNER_TMP_PREFIX, suffix=".json",
                     checksum=True)
        self._saved_tuner_state = state

    def reload(self):
        # As KerasTuner's `BaseTuner.reload`, with `tuner0.json` read with a check: a damaged
        # file is a one-line error naming it, not a bare JSON decoder message.
        if not self._is_worker():
            self.oracle.reload()
            # What a kill during a write of `tuner0.json` left (the file itself is whole).
            remove_temporaries(self.project_dir, prefix=TUNER_TMP_PREFIX)
        self.set_state(read_json(self._get_tuner_fname()))
        if not self._is_worker():
            self.estimator.reload(self.project_dir)

    def get_best_genotypes(self, num_genotypes=1):
        """The best architectures, best first: the final selection's ranking when one ran
        (`final_ranking`, standalone-trained finalists first), else the best completed trials.

        Args:
            num_genotypes: how many to return at most.

        Returns:
            A list of architectures (`Genotype` for a `NASNetHyperModel`, `LayerwiseGenotype`
            for a `LayerwiseHyperModel`); shorter than `num_genotypes` when fewer trials
            completed.
        """
        if self.final_ranking:
            return [self.hypermodel.decode(r["values"])
                    for r in self.final_ranking[:num_genotypes]]
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


class NASNetTuner(NASTuner):
    """`NASTuner` over the NASNet cell space (Zoph et al. 2018), its hypermodel made here.

    A convenience: `NASNetTuner(num_blocks=2, ..., max_trials=4, directory=...)` is
    `NASTuner(NASNetHyperModel(num_blocks=2, ...), max_trials=4, directory=...)`. The keyword
    arguments that `NASNetHyperModel` takes (`space`, `num_blocks`, `ops`, `combine_ops`,
    `num_cells`, `penultimate_filters`, `input_shape`, `classes`, `optimizer`, `loss`,
    `metrics`, `compile_kwargs`, `batch_norm_momentum`, `build_kwargs`) build the hypermodel
    (`optimizer`, `loss` and `metrics` compile each child); the others are `NASTuner`'s.

    Args:
        hypermodel: a `NASNetHyperModel`; by default one made of the hypermodel's arguments
            in `**kwargs`.
        oracle: as for `NASTuner`.
        **kwargs: `NASNetHyperModel` arguments when `hypermodel` is not given, then
            `NASTuner` arguments.

    Example:

    ```python
    tuner = NASNetTuner(num_blocks=2, num_cells=1, penultimate_filters=24,
                        input_shape=(8, 8, 3), classes=4, max_trials=2,
                        directory="/tmp/nas", overwrite=True)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    ```
    """

    def __init__(self, hypermodel=None, oracle=None, **kwargs):
        hypermodel = _resolve_hypermodel(hypermodel, NASNetHyperModel, kwargs)
        super().__init__(hypermodel, oracle, **kwargs)


class LayerwiseTuner(NASTuner):
    """`NASTuner` over the 2016 layer-wise CNN space (Zoph & Le, 1611.01578).

    A convenience, as `NASNetTuner`: the keyword arguments that `LayerwiseHyperModel` takes
    (`space`, `num_layers`, `filter_sizes`, `filters`, `strides`, `skip_connections`,
    `input_shape`, `classes`, `optimizer`, `loss`, `metrics`, `compile_kwargs`,
    `batch_norm_momentum`) build the hypermodel; the others are `NASTuner`'s.

    Example:

    ```python
    tuner = LayerwiseTuner(num_layers=3, input_shape=(8, 8, 3), classes=4, max_trials=2,
                           directory="/tmp/nas2016", overwrite=True)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    best = tuner.get_best_genotypes(1)[0]
    model = nasnet_tf.build_layerwise_cnn(best, input_shape=(8, 8, 3), classes=4)
    ```
    """

    def __init__(self, hypermodel=None, oracle=None, **kwargs):
        hypermodel = _resolve_hypermodel(hypermodel, LayerwiseHyperModel, kwargs)
        super().__init__(hypermodel, oracle, **kwargs)


def _hypermodel_args(cls, kwargs):
    """Pops from `kwargs` the keyword arguments that `cls` (a hypermodel class) takes, its
    own and those it passes to `_ChildHyperModel`."""
    names = [
        name for klass in (cls, _ChildHyperModel)
        for name, p in inspect.signature(klass).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return {name: kwargs.pop(name) for name in names if name in kwargs}


def _resolve_hypermodel(hypermodel, cls, kwargs):
    child_args = _hypermodel_args(cls, kwargs)
    if hypermodel is None:
        return cls(**child_args)
    if not isinstance(hypermodel, cls):
        raise ValueError(
            f"`hypermodel` must be a `{cls.__name__}` (or None to build one from the "
            f"hypermodel's arguments). Received: hypermodel={hypermodel!r}"
        )
    if child_args:
        raise ValueError(
            f"With `hypermodel` given, set {sorted(child_args)} on that hypermodel instead. "
            f"Received: hypermodel={hypermodel!r} and {sorted(child_args)}"
        )
    return hypermodel
