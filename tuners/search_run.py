"""A resumable NAS search with all its outputs, as one object: `SearchRun`.

`SearchRun(directory, ...)` is what `nasnet-tf search` runs: it makes the strategy's oracle
(`make_oracle`), the estimator, the space's hypermodel and a `NASTuner`, checks that a search
already in `directory` has the same settings (`search.json`) and resumes it, runs the trials
(within a time budget, when given), and writes the per-trial table, the best genotypes, the
estimation records, the cell drawings, the HTML report and the controller's TensorBoard
scalars. The trials' events reach those outputs through `SearchListener`s
(`tuners.search_outputs`), then the user's own.
"""

import os

from nasnet_tf import validators
from nasnet_tf.data import ImageDataset
from nasnet_tf.genotype import COMBINE_OPS, OP_NAMES
from nasnet_tf.io_utils import read_json, write_json
from tuners import search_outputs as outputs
from tuners.listeners import check_listeners
from tuners.reward_oracle import shifted_seed

__all__ = ["ESTIMATORS", "SPACES", "STRATEGIES", "NoCompletedTrialError", "SearchRun",
           "make_oracle"]

STRATEGIES = ("controller", "evolution", "random")
ESTIMATORS = ("train", "fresh", "shared")
SPACES = ("nasnet", "layerwise")
DEFAULT_CANDIDATES_PER_TRIAL = 20


class NoCompletedTrialError(RuntimeError):
    """A search ended without a completed trial, so it has no best genotype."""


def make_oracle(strategy, *, max_trials, seed, max_consecutive_failed_trials=3,
                update_every=None, population_size=None, sample_size=None):
    """The KerasTuner oracle of a search strategy, maximising `val_accuracy`.

    Args:
        strategy: one of `STRATEGIES`: `"controller"` (`tuners.controller_oracle.ControllerOracle`),
            `"evolution"` (`tuners.evolution.EvolutionOracle`) or `"random"`
            (`keras_tuner.oracles.RandomSearchOracle`).
        max_trials, max_consecutive_failed_trials: the oracle's.
        seed: an int >= 0; the same seed draws the same trials (the random oracle gets
            `tuners.reward_oracle.shifted_seed(seed)`: KerasTuner takes 0 for "no seed").
        update_every: rewards per controller update (controller only); None derives it from
            `max_trials` (`tuners.controller_oracle.default_update_every`).
        population_size, sample_size: evolution only; None keeps the oracle's defaults.

    Example:

    >>> make_oracle("random", max_trials=2, seed=0).max_trials
    2
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown search strategy {strategy!r}. Accepted: {list(STRATEGIES)}")
    evolution_args = validators.given(population_size=population_size, sample_size=sample_size)
    if evolution_args and strategy != "evolution":
        raise ValueError(f"{sorted(evolution_args)} apply to the evolution strategy only. "
                         f"Received: strategy={strategy!r} and {evolution_args}")
    common = dict(objective="val_accuracy", max_trials=max_trials, seed=seed,
                  max_consecutive_failed_trials=max_consecutive_failed_trials)
    if strategy == "controller":
        from tuners.controller_oracle import ControllerOracle

        return ControllerOracle(update_every=update_every, **common)
    if strategy == "evolution":
        from tuners.evolution import EvolutionOracle

        return EvolutionOracle(**evolution_args, **common)
    from keras_tuner.oracles import RandomSearchOracle

    # Seed 0, the CLI's default, would draw other trials on every run (see `shifted_seed`).
    return RandomSearchOracle(**{**common, "seed": shifted_seed(seed)})


def _resumed_settings(previous, settings, update_every_given):
    """`previous` (a `search.json`) completed with the defaults of the settings it predates, and
    `settings` with the update cadence a resumed search keeps: the one it started with, unless
    `update_every` was given (then it must match)."""
    previous = dict(previous)
    previous.setdefault("strategy", "controller")  # searches written before --strategy
    previous.setdefault("estimator", "train")  # ... before --estimator
    if previous.get("space", "nasnet") == "nasnet":  # ... before --ops and --combine-ops
        previous.setdefault("ops", list(OP_NAMES))
        previous.setdefault("combine_ops", list(COMBINE_OPS))
    settings = dict(settings)
    if not update_every_given:
        settings["update_every"] = previous.get("update_every")
    return previous, settings


def _print_flushed(line):
    print(line, flush=True)


def _one_of(value, name, accepted):
    if value not in accepted:
        raise ValueError(f"`{name}` must be one of {list(accepted)}. Received: {name}={value!r}")


def _names(value, name, accepted):
    if value is None:
        return None
    if isinstance(value, str) or not all(v in accepted for v in value) or not value or len(
            set(value)) != len(value):
        raise ValueError(f"`{name}` must be a list of distinct names from {list(accepted)}. "
                         f"Received: {name}={value!r}")
    return list(value)


class SearchRun:
    """A resumable NAS search in a directory, with the outputs of `nasnet-tf search`.

    `search(data)` runs (or resumes) the search: a `NASTuner` over the NASNet cell space (or
    the 2016 layer-wise space), its trials chosen by the RNN controller, regularized evolution
    or random search, each child scored by training it (`estimator="train"`) or through one
    super-network (`"fresh"`, `"shared"`, then a final selection trains the best few
    standalone). In `directory` it writes `search.json` (the settings a resumed search must
    share), `trials.json` (the per-trial table, also printed), `estimation.json` (each score
    with the search time it was known at), `best_genotype.json` and `best_genotypes.json`
    (the `top` best, every number labelled), the best cells drawn under `cells/` (NASNet
    space), and optionally `report.html` and the controller's TensorBoard scalars under
    `tuner/tensorboard`. Run it again on the same directory to resume: the settings must
    match (`tensorboard`, `report`, `max_minutes`, `top`, `listeners` and `verbose` may
    change; `update_every=None` keeps the search's own cadence).

    Args:
        directory: the run folder (the KerasTuner project is its `tuner` sub-folder).
        space: `"nasnet"` (NASNet cells) or `"layerwise"` (the 2016 space).
        strategy: `"controller"`, `"evolution"` or `"random"` (see `make_oracle`).
        estimator: `"train"` (build and train each child), `"fresh"` (`FreshWeights`) or
            `"shared"` (`SharedWeights`, ENAS); the last two need `space="nasnet"` and
            `penultimate_filters` a multiple of 48.
        trials: the number of trials.
        epochs: epochs per child (the final selection trains each finalist for a third of
            them, at least 1).
        steps_per_epoch: optional cap on a child's steps per epoch.
        num_blocks, ops, combine_ops: the NASNet space: blocks per cell, the ops and the
            combinations a block chooses from (None: all).
        num_layers: layers of a layer-wise child.
        num_cells, penultimate_filters: N and P of the child networks.
        update_every: rewards per controller update (None: derived from `trials`).
        population_size, sample_size: evolution only (None: `EvolutionOracle`'s defaults).
        candidates_per_trial: `"shared"` only: architectures rewarded per trial (None: 20).
        finalists: `"fresh"` / `"shared"` only: the final selection's standalone trainings
            (None: `FinalSelection`'s default).
        top: best genotypes to keep in `best_genotypes.json`.
        bn_momentum: the children's batch-norm momentum (None: from the run's length,
            `nasnet_tf.recipe.bn_momentum`).
        seed: an int >= 0: the same seed gives the same trials and scores.
        max_minutes: optional wall-time budget: no trial starts after it (the running one
            finishes); a resumed search counts from its own start.
        tensorboard: write the controller's scalars for TensorBoard.
        report: write `report.html` after each trial and at the end.
        overwrite: start afresh, discarding a search in `directory`.
        listeners: more `tuners.SearchListener`s, called after the run's own.
        verbose: 0 (silent) or 1 (the start, the per-trial table, the results).
        print_fn: called with each line to print (default: `print`).

    Example:

    >>> from nasnet_tf.data import load_dataset
    >>> data = load_dataset("digits", batch_size=32)
    >>> run = SearchRun("search", space="layerwise", num_layers=1, strategy="random",
    ...                 trials=2, epochs=1, steps_per_epoch=2, verbose=0)
    >>> summary = run.search(data)
    >>> summary["best_score"] == max(r["accuracy"] for r in run.table.rows)
    True
    >>> sorted(os.listdir("search"))  # doctest: +NORMALIZE_WHITESPACE
    ['best_genotype.json', 'best_genotypes.json', 'estimation.json', 'search.json',
     'trials.json', 'tuner']
    """

    def __init__(self, directory, *, space="nasnet", strategy="controller", estimator="train",
                 trials=6, epochs=3, steps_per_epoch=None, num_blocks=5, ops=None,
                 combine_ops=None, num_layers=4, num_cells=1, penultimate_filters=48,
                 update_every=None, population_size=None, sample_size=None,
                 candidates_per_trial=None, finalists=None, top=3, bn_momentum=None, seed=0,
                 max_minutes=None, tensorboard=False, report=False, overwrite=False,
                 listeners=None, verbose=1, print_fn=None):
        _one_of(space, "space", SPACES)
        _one_of(strategy, "strategy", STRATEGIES)
        _one_of(estimator, "estimator", ESTIMATORS)
        for value, name in ((trials, "trials"), (epochs, "epochs"), (num_blocks, "num_blocks"),
                            (num_layers, "num_layers"), (num_cells, "num_cells"),
                            (penultimate_filters, "penultimate_filters"), (top, "top")):
            validators.positive_int(value, name)
        for value, name, low in ((steps_per_epoch, "steps_per_epoch", 1),
                                 (update_every, "update_every", 1),
                                 (population_size, "population_size", 1),
                                 (sample_size, "sample_size", 1),
                                 (candidates_per_trial, "candidates_per_trial", 0),
                                 (finalists, "finalists", 0), (seed, "seed", 0)):
            if value is not None or name == "seed":
                validators.positive_int(value, name, minimum=low)
        if max_minutes is not None:
            validators.positive_float(max_minutes, "max_minutes")
        if bn_momentum is not None:
            validators.momentum(bn_momentum)
        _one_of(verbose, "verbose", (0, 1))
        given = validators.given(population_size=population_size, sample_size=sample_size)
        if given and strategy != "evolution":
            raise ValueError(f"{sorted(given)} apply to strategy='evolution' only. "
                             f"Received: strategy={strategy!r} and {given}")
        if candidates_per_trial is not None and estimator != "shared":
            raise ValueError("`candidates_per_trial` applies to estimator='shared' only. "
                             f"Received: estimator={estimator!r}")
        if finalists is not None and estimator == "train":
            raise ValueError("`finalists` applies to estimator='fresh' or 'shared' only (with "
                             "'train' every child is trained standalone already). Received: "
                             f"finalists={finalists!r}")
        if space != "nasnet":
            if estimator != "train":
                raise ValueError(f"estimator={estimator!r} scores children through a NASNet "
                                 "super-network: it needs space='nasnet'. Received: "
                                 f"space={space!r}")
            given = validators.given(ops=ops, combine_ops=combine_ops)
            if given:
                raise ValueError(f"{sorted(given)} apply to space='nasnet' only. Received: "
                                 f"space={space!r} and {given}")
        elif estimator != "train" and penultimate_filters % 48:
            raise ValueError(f"estimator={estimator!r} needs `penultimate_filters` a multiple "
                             "of 48 (the super-network's factorized reductions halve 24 x an "
                             f"even F). Received: penultimate_filters={penultimate_filters}")
        self.directory = os.path.abspath(os.fspath(directory))
        self.space, self.strategy, self.estimator = space, strategy, estimator
        self.trials, self.epochs, self.steps_per_epoch = trials, epochs, steps_per_epoch
        self.num_blocks, self.num_layers = num_blocks, num_layers
        self.ops = _names(ops, "ops", OP_NAMES)
        self.combine_ops = _names(combine_ops, "combine_ops", COMBINE_OPS)
        self.num_cells, self.penultimate_filters = num_cells, penultimate_filters
        self.update_every = update_every
        self.population_size, self.sample_size = population_size, sample_size
        self.candidates_per_trial, self.finalists = candidates_per_trial, finalists
        self.top, self.bn_momentum, self.seed = top, bn_momentum, seed
        self.max_minutes, self.tensorboard, self.report = max_minutes, tensorboard, report
        self.overwrite = overwrite
        self.listeners = check_listeners(listeners)
        self.verbose = verbose
        self.print_fn = print_fn or _print_flushed
        self.tuner = self.table = self.estimation = None
        self.best_genotypes = []

    def _print(self, line):
        if self.verbose:
            self.print_fn(line)

    def _path(self, name):
        return os.path.join(self.directory, name)

    def settings(self, data, data_name=None):
        """What `search.json` records: the settings a resumed search must share, for the
        `ImageDataset` `data` (recorded as `data_name`, default `data.name`)."""
        settings = {
            "space": self.space, "dataset": data.name if data_name is None else data_name,
            "image_shape": list(data.image_shape), "classes": data.num_classes,
            "trials": self.trials, "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch, "batch_size": data.batch_size,
            "num_blocks": self.num_blocks, "num_layers": self.num_layers,
            "num_cells": self.num_cells, "penultimate_filters": self.penultimate_filters,
            "update_every": self.update_every, "seed": self.seed, "augment": data.augment,
            "strategy": self.strategy, "estimator": self.estimator,
        }
        if self.space == "nasnet":
            settings.update(ops=list(self.ops or OP_NAMES),
                            combine_ops=list(self.combine_ops or COMBINE_OPS))
        if self.strategy == "evolution":
            settings.update(population_size=self.population_size, sample_size=self.sample_size)
        if self.estimator == "shared":
            settings["candidates_per_trial"] = self._candidates_per_trial()
        return settings

    def _candidates_per_trial(self):
        if self.candidates_per_trial is None:
            return DEFAULT_CANDIDATES_PER_TRIAL
        return self.candidates_per_trial

    def _resume(self, data, data_name):
        """`(resume, settings, changed)`: whether a search in `directory` resumes, the settings
        to record, and the names of those that differ from its own."""
        settings = self.settings(data, data_name)
        path = self._path(outputs.SEARCH_FILE)
        if self.overwrite or not os.path.isfile(path):
            return False, settings, []
        previous, settings = _resumed_settings(read_json(path), settings,
                                               self.update_every is not None)
        changed = sorted(k for k in {**previous, **settings}
                         if previous.get(k) != settings.get(k))
        return True, settings, changed

    def changed_settings(self, data, data_name=None):
        """The names of the settings in which a search already in `directory` differs from
        this one (empty when there is none, it matches, or `overwrite=True`)."""
        return self._resume(_checked_data(data), data_name)[2]

    def search(self, data, data_name=None):
        """Runs (or resumes) the search on `data` and writes its outputs.

        Args:
            data: a `nasnet_tf.data.ImageDataset` (`nasnet_tf.data.load_dataset`): children
                train on `data.train` and are scored on `data.validation`.
            data_name: the dataset's name in `search.json` (default: `data.name`).

        Returns:
            A dict: the paths written (`best_genotype`, `top_genotypes`, `trials`,
            `estimation`, and `report`, `diagrams` when written), `best_score`, `best_trial`
            (None when the final selection picked), `num_scored` and
            `stopped_by_time_budget`. The best genotypes are in `self.best_genotypes`, the
            tuner in `self.tuner`.
        """
        if "KERASTUNER_ORACLE_IP" in os.environ:
            raise ValueError(
                "A SearchRun runs its search in one process, but KERASTUNER_ORACLE_IP is set "
                "(KerasTuner's chief/worker mode): run tuners.NASTuner on the chief and each "
                "worker instead (docs/distributed.md), or unset it.")
        resume, settings, changed = self._resume(_checked_data(data), data_name)
        if changed:
            raise ValueError(
                f"{self.directory!r} holds a search with other settings ({', '.join(changed)})"
                ": pass `overwrite=True` to start afresh, or choose another `directory`. "
                f"Received: {', '.join(f'{k}={settings.get(k)!r}' for k in changed)}")
        os.makedirs(self.directory, exist_ok=True)
        write_json(self._path(outputs.SEARCH_FILE), settings)
        rows_path = self._path(outputs.TRIALS_FILE)
        rows = read_json(rows_path) if resume and os.path.isfile(rows_path) else []
        self.table = outputs.TrialTable(rows_path, rows, self.estimator,
                                        self.print_fn if self.verbose else None,
                                        final_selection=self.finalists != 0)
        self.estimation = outputs.EstimationRecord(self._path(outputs.ESTIMATION_FILE),
                                                   self.estimator, self.table, resume)
        self.tuner = tuner = self._make_tuner(settings, data, resume)
        done = sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
        budget = f", at most {self.max_minutes:g} minutes" if self.max_minutes else ""
        scorer = "" if self.estimator == "train" else f", {self.estimator} weights"
        self._print(f"{'Resuming' if resume else 'Starting'} the {self.space} search "
                    f"({self.strategy}{scorer}) in {self.directory}: {self.trials} trials"
                    f"{budget} on {data.name} {tuple(data.image_shape)}, {data.train_size} "
                    f"train / {data.validation_size} validation images"
                    + (f" ({done} trials done)" if resume else ""))
        # The data is a tf.data pipeline, shuffled each epoch by the pipeline itself: `fit`'s
        # own `shuffle=True` would be ignored (with a warning on every trial).
        fit = dict(validation_data=data.validation, epochs=self.epochs, verbose=0,
                   shuffle=False)
        if self.steps_per_epoch:
            fit["steps_per_epoch"] = self.steps_per_epoch
        tuner.search(data.train, max_minutes=self.max_minutes, **fit)
        if tuner.stopped_by_time_budget:
            done = sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
            self._print(f"Time budget of {self.max_minutes:g} minutes spent: {done} of "
                        f"{self.trials} trials done; run again to continue.")
        return self._results(tuner)

    def _results(self, tuner):
        """Writes the best genotypes and draws the best cells; returns the summary."""
        summary = {"estimation": self.estimation.path}
        if self.report:
            summary["report"] = self._path(outputs.REPORT_FILE)
        top = outputs.best_entries(tuner, self.top, self.estimator, self.epochs)
        if not top:
            raise NoCompletedTrialError(
                f"No trial completed in {self.directory!r}, so there is no best genotype "
                f"(see the per-trial table, {outputs.TRIALS_FILE}).")
        self.best_genotypes, top = [g for g, _ in top], [entry for _, entry in top]
        write_json(self._path(outputs.BEST_FILE), top[0])
        write_json(self._path(outputs.TOP_FILE), top)
        summary = {"best_genotype": self._path(outputs.BEST_FILE),
                   "top_genotypes": self._path(outputs.TOP_FILE),
                   "trials": self._path(outputs.TRIALS_FILE), **summary,
                   "best_score": top[0]["score"], "best_trial": top[0]["trial"],
                   "num_scored": self.estimation.num_scored,
                   "stopped_by_time_budget": tuner.stopped_by_time_budget}
        self._print(f"{self.estimation.num_scored} architectures scored ({self.estimator} "
                    "estimator)")
        if tuner.final_ranking:
            first = top[0]
            standalone, estimate = first["standalone_val_accuracy"], first["estimate"]
            if standalone is None and self.finalists == 0:  # ranked, none trained
                self._print(f"Best trial {first['trial']}: {first['estimate_kind']} "
                            + ("-" if estimate is None else f"{estimate:.4f}")
                            + " (--finalists 0: none trained standalone)")
            else:
                self._print("Final selection: standalone val_accuracy "
                            + ("-" if standalone is None else f"{standalone:.4f}")
                            + f" ({first['estimate_kind']} "
                            + ("-" if estimate is None else f"{estimate:.4f}") + ")")
        else:
            self._print(f"Best trial {top[0]['trial']}: val_accuracy {top[0]['score']:.4f}")
        best = self.best_genotypes[0]
        self._print(f"  {best}")
        if self.space == "nasnet":
            from nasnet_tf.diagram import draw_genotype, format_genotype

            self._print(format_genotype(best))
            paths = draw_genotype(best, self._path("cells"), formats=("png", "svg"))
            summary["diagrams"] = [p for kind in ("normal", "reduction") for p in paths[kind]
                                   if not p.endswith(".dot")]
        return summary

    @property
    def best_genotype(self):
        """The best genotype of the last `search()` (None before one)."""
        return self.best_genotypes[0] if self.best_genotypes else None

    def _make_estimator(self):
        if self.estimator == "fresh":
            from tuners.weight_sharing import FreshWeights

            return FreshWeights(seed=self.seed)
        if self.estimator == "shared":
            from tuners.weight_sharing import SharedWeights

            return SharedWeights(seed=self.seed,
                                 candidates_per_trial=self._candidates_per_trial())
        from tuners.estimation import TrainAndEvaluate

        # Seeded from the seed and the trial id: the same seed gives the same per-trial table.
        return TrainAndEvaluate(seed=self.seed)

    def _make_hypermodel(self, settings, data, momentum):
        from tuners.nas_tuner import LayerwiseHyperModel, NASNetHyperModel

        common = dict(input_shape=tuple(data.image_shape), classes=data.num_classes,
                      batch_norm_momentum=momentum)
        if self.space == "nasnet":
            return NASNetHyperModel(num_blocks=self.num_blocks, ops=settings["ops"],
                                    combine_ops=settings["combine_ops"],
                                    num_cells=self.num_cells,
                                    penultimate_filters=self.penultimate_filters, **common)
        return LayerwiseHyperModel(num_layers=self.num_layers, **common)

    def _make_tuner(self, settings, data, resume):
        from nasnet_tf.recipe import bn_momentum
        from tuners.nas_tuner import NASTuner

        steps = min(data.steps_per_epoch, self.steps_per_epoch or data.steps_per_epoch)
        momentum = bn_momentum(self.bn_momentum, steps * self.epochs)
        oracle = make_oracle(
            self.strategy, max_trials=self.trials, seed=self.seed,
            max_consecutive_failed_trials=max(3, self.trials),
            update_every=settings["update_every"],
            population_size=self.population_size, sample_size=self.sample_size,
        )
        selection = None
        if self.estimator in ("shared", "fresh"):
            from tuners.final_selection import FinalSelection

            finalists = {} if self.finalists is None else {"num_standalone": self.finalists}
            # Many short trainings: the same budget as 3 finalists of `epochs` each, spent on
            # 3x the candidates (benchmarks/selection_policy.py).
            selection = FinalSelection(standalone_epochs=max(1, round(self.epochs / 3)),
                                       seed=self.seed, **finalists)
        listeners = [outputs.TensorBoardScalars()] if self.tensorboard else []
        listeners += [self.table, self.estimation]
        if self.report:
            listeners.append(outputs.HTMLReport(self.directory))
        return NASTuner(
            self._make_hypermodel(settings, data, momentum), oracle,
            estimator=self._make_estimator(), directory=self.directory, project_name="tuner",
            overwrite=not resume, final_selection=selection,
            listeners=listeners + self.listeners,
        )


def _checked_data(data):
    if not isinstance(data, ImageDataset):
        raise ValueError("`data` must be a `nasnet_tf.data.ImageDataset` (see "
                         f"`nasnet_tf.data.load_dataset`). Received: data={data!r}")
    return data
