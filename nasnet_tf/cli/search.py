"""`nasnet-tf search`: a NAS search (controller, evolution or random) with a per-trial table.

Children are scored by one of three estimators: `train` (each child built and trained, the
NASNet paper's), `fresh` (`tuners.weight_sharing.FreshWeights`: fresh weights through one
compiled super-network) or `shared` (`SharedWeights`: ENAS weight sharing, many architectures
scored per trial). The search is resumable (run it again with the same `--output-dir`), writes
the best genotypes as JSON, the architectures scored over time as `estimation.json`, and draws
the best cells; `--tensorboard` and `--report` add the controller's TensorBoard scalars and an
HTML report. This module and `report` are the only parts of `nasnet_tf` that import `tuners`
(lazily, when they run).
"""

import math
import os
import time

from nasnet_tf import validators
from nasnet_tf.cli import args as cli_args
from nasnet_tf.cli import utils
from nasnet_tf.genotype import COMBINE_OPS, OP_NAMES
from nasnet_tf.io_utils import write_json

SEARCH_FILE = "search.json"
TRIALS_FILE = "trials.json"
BEST_FILE = "best_genotype.json"
TOP_FILE = "best_genotypes.json"
ESTIMATION_FILE = "estimation.json"
REPORT_FILE = "report.html"
STRATEGIES = ("controller", "evolution", "random")
ESTIMATORS = ("train", "fresh", "shared")
DEFAULT_CANDIDATES_PER_TRIAL = 20
DEFAULT_FINALISTS = 9  # FinalSelection's num_standalone (kept here: --help imports no Keras)
_TABLE = "{:>5}  {:<58}  {:>9}  {:>8}  {:>7}  {:>8}"


def register(subparsers):
    p = subparsers.add_parser(
        "search", help="run a NAS search (RNN controller, evolution or random) on a dataset",
        description="Search the NASNet cell space (or the 2016 layer-wise space) with the RNN "
        "controller, regularized evolution or random search: each trial's child scored by "
        "training it (or through one super-network: --estimator fresh / shared), a per-trial "
        "table, resumable (run again with the same --output-dir), the best genotypes written "
        "as JSON and drawn, the architectures scored over time in estimation.json.")
    add_search_args(p, strategies=True)
    cli_args.add_data_args(p, batch_size=64)
    p.add_argument("--output-dir", default=os.path.join(utils.DEFAULT_RUNS, "search"))
    p.add_argument("--overwrite", action="store_true", help="start afresh, discarding a "
                   "search in --output-dir")
    p.set_defaults(func=run, needs_backend=True)


def add_search_args(p, strategies=False):
    """The search arguments of `search` and `demo`; `strategies` adds `--strategy`, its options,
    `--estimator`, `--max-minutes`, `--tensorboard` and `--report` (the demo always runs the
    controller and trains each child, without a time budget)."""
    if strategies:
        p.add_argument("--strategy", dest="search_strategy", choices=STRATEGIES,
                       default="controller",
                       help="how trials are chosen: the RNN controller (NASNet's), regularized "
                       "evolution, or KerasTuner's random search (default: %(default)s)")
        p.add_argument("--population-size", type=cli_args.positive_int,
                       help="evolution only: members kept (default: EvolutionOracle's)")
        p.add_argument("--sample-size", type=cli_args.positive_int,
                       help="evolution only: members drawn to pick a parent (default: "
                       "EvolutionOracle's)")
        p.add_argument("--estimator", choices=ESTIMATORS, default="train",
                       help="how a child is scored: 'train' builds and trains each child "
                       "(NASNet's), 'fresh' trains it from fresh weights through one compiled "
                       "super-network, 'shared' shares the super-network's weights (ENAS: one "
                       "trial = one epoch of the shared weights, then --candidates-per-trial "
                       "architectures rewarded); fresh and shared need --space nasnet "
                       "(default: %(default)s)")
        p.add_argument("--candidates-per-trial", type=cli_args.non_negative_int,
                       help="--estimator shared only: architectures rewarded after each epoch "
                       f"of the shared weights (default: {DEFAULT_CANDIDATES_PER_TRIAL})")
        p.add_argument("--finalists", type=cli_args.non_negative_int,
                       help="--estimator fresh / shared only: the final selection trains this "
                       "many of the best proposals from scratch, each for a third of --epochs "
                       f"(at least 1); the best wins (default: {DEFAULT_FINALISTS})")
        p.add_argument("--max-minutes", type=cli_args.positive_float,
                       help="wall-time budget: no trial starts after this many minutes (the "
                       "running one finishes), then the results are written as at a normal end; "
                       "a resumed search counts from its own start")
        p.add_argument("--tensorboard", action="store_true",
                       help="write the controller's scalars (rewards, entropy, op preferences) "
                       "for TensorBoard under <output-dir>/tuner/tensorboard")
        p.add_argument("--report", action="store_true",
                       help=f"write <output-dir>/{REPORT_FILE}, one self-contained HTML page, "
                       "after each trial and at the end")
    else:
        p.set_defaults(search_strategy="controller", population_size=None, sample_size=None,
                       estimator="train", candidates_per_trial=None, finalists=None,
                       max_minutes=None,
                       tensorboard=False, report=False)
    p.add_argument("--space", choices=("nasnet", "layerwise"), default="nasnet",
                   help="NASNet cells (2017) or the layer-wise 2016 space (default: nasnet)")
    p.add_argument("--trials", type=cli_args.positive_int, default=6,
                   help="children to train (default: %(default)s)")
    p.add_argument("--epochs", type=cli_args.positive_int, default=3,
                   help="epochs per child (default: %(default)s)")
    p.add_argument("--steps-per-epoch", type=cli_args.positive_int, help="cap on a child's steps")
    p.add_argument("--num-blocks", type=cli_args.positive_int, default=5,
                   help="B, blocks per cell")
    p.add_argument("--ops", nargs="+", choices=OP_NAMES, metavar="OP",
                   help="the ops a NASNet block chooses from (default: all 13: "
                   f"{' '.join(OP_NAMES)})")
    p.add_argument("--combine-ops", nargs="+", choices=COMBINE_OPS, metavar="OP",
                   help="how a NASNet block combines its two ops: add, concat or both "
                   "(default: both)")
    p.add_argument("--num-layers", type=cli_args.positive_int, default=4,
                   help="layers of a layer-wise child")
    p.add_argument("--num-cells", type=cli_args.positive_int, default=1,
                   help="N of the child networks")
    p.add_argument("--penultimate-filters", type=cli_args.positive_int, default=48,
                   help="P of the child networks, a multiple of 24 (default: %(default)s)")
    p.add_argument("--update-every", type=cli_args.positive_int,
                   help="rewards per controller update (default: derived from --trials, see "
                   "`tuners.oracle.default_update_every`; a resumed search keeps its own)")
    p.add_argument("--top", type=cli_args.positive_int, default=3, help="best genotypes to keep")
    p.add_argument("--bn-momentum", type=cli_args.momentum, help="batch-norm momentum of the "
                   "children (default: from the run's length, see `bn_momentum`)")


def make_oracle(strategy, *, max_trials, seed, max_consecutive_failed_trials=3,
                update_every=None, population_size=None, sample_size=None):
    """The KerasTuner oracle of a search strategy, maximising `val_accuracy`.

    Args:
        strategy: one of `STRATEGIES`: `"controller"` (`tuners.oracle.ControllerOracle`),
            `"evolution"` (`tuners.evolution.EvolutionOracle`) or `"random"`
            (`keras_tuner.oracles.RandomSearchOracle`).
        max_trials, max_consecutive_failed_trials: the oracle's.
        seed: an int >= 0; the same seed draws the same trials (the random oracle gets
            `seed + 1`: KerasTuner takes 0 for "no seed").
        update_every: rewards per controller update (controller only); None derives it from
            `max_trials` (`tuners.oracle.default_update_every`).
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
        from tuners.oracle import ControllerOracle

        return ControllerOracle(update_every=update_every, **common)
    if strategy == "evolution":
        from tuners.evolution import EvolutionOracle

        return EvolutionOracle(**evolution_args, **common)
    from keras_tuner.oracles import RandomSearchOracle

    # KerasTuner's oracles take a seed of 0 for "no seed" (a random one): seed 0, the CLI's
    # default, would draw other trials on every run. Shifted by one, every seed is kept.
    return RandomSearchOracle(**{**common, "seed": seed + 1})


def _flags(given):
    return " and ".join(f"--{k.replace('_', '-')}" for k in given)


def _check_options(args):
    """The one-line errors of option combinations, before anything is read or written."""
    if "KERASTUNER_ORACLE_IP" in os.environ:
        # Its progress table, trials.json and results are written by the one process that
        # runs the trials; a chief/worker search is a script around `tuners.NASTuner`.
        raise utils.CLIError(
            "the command line runs a search in one process, but KERASTUNER_ORACLE_IP is set "
            "(KerasTuner's chief/worker mode): run a Python script with tuners.NASTuner on the "
            "chief and each worker instead (docs/distributed.md), or unset it"
        )
    given = validators.given(population_size=args.population_size, sample_size=args.sample_size)
    if given and args.search_strategy != "evolution":
        raise utils.CLIError(f"{_flags(given)} apply to --strategy evolution only (got "
                             f"--strategy {args.search_strategy})")
    if args.candidates_per_trial is not None and args.estimator != "shared":
        raise utils.CLIError(f"--candidates-per-trial applies to --estimator shared only (got "
                             f"--estimator {args.estimator})")
    if args.finalists is not None and args.estimator == "train":
        raise utils.CLIError("--finalists applies to --estimator fresh / shared only (with "
                             "--estimator train every child is trained standalone already)")
    if args.space != "nasnet":
        if args.estimator != "train":
            raise utils.CLIError(f"--estimator {args.estimator} scores children through a "
                                 "NASNet super-network: it needs --space nasnet (got --space "
                                 f"{args.space}); use --estimator train")
        given = validators.given(ops=args.ops, combine_ops=args.combine_ops)
        if given:
            raise utils.CLIError(f"{_flags(given)} apply to --space nasnet only (got --space "
                                 f"{args.space})")
    elif args.estimator != "train" and args.penultimate_filters % 48:
        raise utils.CLIError(f"--estimator {args.estimator} needs --penultimate-filters a "
                             "multiple of 48 (the super-network's factorized reductions halve "
                             f"24 x an even F; got {args.penultimate_filters})")
    for name in ("ops", "combine_ops"):
        values = getattr(args, name) or []
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise utils.CLIError(f"--{name.replace('_', '-')} lists {', '.join(repeated)} more "
                                 "than once")


def _candidates_per_trial(args):
    if args.candidates_per_trial is None:
        return DEFAULT_CANDIDATES_PER_TRIAL
    return args.candidates_per_trial


def _settings(args, data):
    """What `search.json` records: the settings a resumed search must share. `--tensorboard`,
    `--report`, `--max-minutes` and `--top` are not among them (they do not change the search)."""
    settings = {
        "space": args.space, "dataset": args.dataset, "image_shape": list(data.image_shape),
        "classes": data.num_classes, "trials": args.trials, "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch, "batch_size": args.batch_size,
        "num_blocks": args.num_blocks, "num_layers": args.num_layers,
        "num_cells": args.num_cells, "penultimate_filters": args.penultimate_filters,
        "update_every": args.update_every, "seed": args.seed, "augment": data.augment,
        "strategy": args.search_strategy, "estimator": args.estimator,
    }
    if args.space == "nasnet":
        settings.update(ops=list(args.ops or OP_NAMES),
                        combine_ops=list(args.combine_ops or COMBINE_OPS))
    if args.search_strategy == "evolution":
        settings.update(population_size=args.population_size, sample_size=args.sample_size)
    if args.estimator == "shared":
        settings["candidates_per_trial"] = _candidates_per_trial(args)
    return settings


def _resumed_settings(previous, settings, update_every_given):
    """`previous` (a `search.json`) completed with the defaults of the settings it predates, and
    `settings` with the update cadence a resumed search keeps: the one it started with, unless
    `--update-every` was given (then it must match)."""
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


def _short(text, width=58):
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def best_trials(oracle, num_trials):
    """The `num_trials` best COMPLETED trials of `oracle`, best first; ties break by trial id
    (natural order: "2" before "10"), so the same search always lists them in the same order.

    Example:

    >>> import types
    >>> oracle = types.SimpleNamespace(
    ...     objective=types.SimpleNamespace(direction="max"),
    ...     trials={i: types.SimpleNamespace(trial_id=i, status="COMPLETED", score=s)
    ...             for i, s in (("10", 0.5), ("2", 0.5), ("3", 0.9))})
    >>> [t.trial_id for t in best_trials(oracle, 3)]
    ['3', '2', '10']
    """
    from tuners.report import natural_key

    sign = 1.0 if getattr(oracle.objective, "direction", "max") == "min" else -1.0
    done = [t for t in oracle.trials.values()
            if t.status == "COMPLETED" and t.score is not None and math.isfinite(float(t.score))]
    done.sort(key=lambda t: (sign * float(t.score), natural_key(t.trial_id)))
    return done[:num_trials]


class _SearchReport:
    """Collects and prints the per-trial table; rows persist in `trials.json` (resume), each
    with the trial's wall time in `seconds`. The params column is the child's ("-" when no
    standalone child is built: --estimator fresh / shared); the reward and entropy columns are
    the controller's ("-" under other strategies). After each trial `after_trial()` runs (it
    writes `estimation.json` and the report)."""

    def __init__(self, path, rows, estimator="train"):
        self.path = path
        self.rows = rows
        self.estimator = estimator
        self.params = {}
        self.started = {}
        self.after_trial = None

    def header(self):
        label = {"shared": "ws_est", "fresh": "fresh"}.get(self.estimator, "accuracy")
        if self.estimator != "train":
            what = ("a weight-sharing estimate: the shared weights of the trial's epoch"
                    if self.estimator == "shared" else "the child trained from fresh weights "
                    "inside the super-network")
            print(f"({label}: the trial's validation accuracy, {what}; the final selection "
                  "then trains the best few standalone)")
        print(_TABLE.format("trial", "genotype", "params", label, "reward", "entropy"))

    def print_row(self, row):
        def num(value, fmt):
            return "-" if value is None else format(value, fmt)

        print(_TABLE.format(row["trial"], _short(row["genotype"]), num(row["params"], ","),
                            num(row["accuracy"], ".4f"), num(row["reward"], ".4f"),
                            num(row["entropy"], ".3f")), flush=True)

    def trial_began(self, trial):
        self.started[trial.trial_id] = time.monotonic()

    def trial_ended(self, tuner, trial):
        import numpy as np

        oracle = tuner.oracle
        reward = entropy = None
        for trial_id, value, *_ in getattr(oracle, "rewards", []):
            if trial_id == trial.trial_id:
                reward = value
        decisions = getattr(oracle, "trial_decisions", {}).get(trial.trial_id)
        if decisions is not None and getattr(oracle, "controller", None) is not None:
            entropy = float(oracle.controller.entropy(np.array([decisions]))[0])
        started = self.started.pop(trial.trial_id, None)
        row = {
            "trial": trial.trial_id,
            "status": trial.status,
            "genotype": str(tuner.hypermodel.decode(trial.hyperparameters)),
            "params": self.params.get(trial.trial_id),
            "accuracy": None if trial.score is None else float(trial.score),
            "reward": reward,
            "entropy": entropy,
            "seconds": None if started is None else round(time.monotonic() - started, 3),
        }
        self.rows = [r for r in self.rows if r["trial"] != trial.trial_id] + [row]
        write_json(self.path, self.rows)
        self.print_row(row)
        if self.after_trial is not None:
            self.after_trial()


def _stitched(entries, offset=0.0):
    """`[seconds, reward, source]` entries with their clock made continuous: the estimators
    count seconds from their first child in this process, so a resumed search's clock starts
    again at 0; each restart continues from the last time before it (plus `offset`)."""
    out, last_raw, last = [], None, float(offset)
    for seconds, reward, source in entries:
        if last_raw is not None and seconds < last_raw:
            offset = last
        last_raw = seconds
        last = round(float(seconds) + offset, 3)
        out.append([last, float(reward), source])
    return out


class _Estimation:
    """`estimation.json`: the estimator, how many architectures it scored, and each score with
    the search time (seconds) it was known at and its source ("trial": a trial's own child,
    "candidate": an architecture rewarded through weight sharing)."""

    def __init__(self, path, estimator_name, estimator, report, previous):
        self.path = path
        self.name = estimator_name
        self.estimator = estimator
        self.report = report
        # What a resumed search had scored (an interrupted one's estimators start afresh).
        self.previous = previous if isinstance(previous, list) else []

    def scored(self):
        if self.name == "train":
            out, elapsed = [], 0.0
            for row in self.report.rows:
                elapsed += row.get("seconds") or 0.0
                if row.get("accuracy") is not None:
                    out.append([round(elapsed, 3), float(row["accuracy"]), "trial"])
            return out
        if self.name == "fresh":  # FreshWeights keeps this process's children only
            offset = self.previous[-1][0] if self.previous else 0.0
            return self.previous + _stitched(self.estimator.scored, offset)
        # SharedWeights restores its record with its weights (once it scores again).
        return _stitched(self.estimator.scored) if self.estimator.scored else self.previous

    def write(self):
        scored = self.scored()
        write_json(self.path, {"estimator": self.name, "num_scored": len(scored),
                               "scored": scored})
        return len(scored)


def _make_estimator(args, report):
    if args.estimator == "fresh":
        from tuners.weight_sharing import FreshWeights

        return FreshWeights(seed=args.seed)
    if args.estimator == "shared":
        from tuners.weight_sharing import SharedWeights

        return SharedWeights(seed=args.seed, candidates_per_trial=_candidates_per_trial(args))

    import dataclasses

    from tuners.estimation import TrainAndEvaluate

    class CountingEstimator(TrainAndEvaluate):
        """The tuners' own train-and-evaluate, noting each child's parameter count."""

        def estimate(self, child, *fit_args, **fit_kwargs):
            build = child.build

            def counted_build():
                model = build()
                report.params[child.trial_id] = int(model.count_params())
                return model

            return super().estimate(dataclasses.replace(child, build=counted_build),
                                    *fit_args, **fit_kwargs)

    # Seeded from --seed and the trial id: the same seed gives the same per-trial table.
    return CountingEstimator(seed=args.seed)


def _make_hypermodel(args, settings, data, momentum):
    """The searched space as the tuner's hypermodel; the children's batch-norm momentum is
    `momentum`."""
    from tuners.nas_tuner import LayerwiseHyperModel, NASNetHyperModel

    common = dict(input_shape=tuple(data.image_shape), classes=data.num_classes,
                  batch_norm_momentum=momentum)
    if args.space == "nasnet":
        return NASNetHyperModel(num_blocks=args.num_blocks, ops=settings["ops"],
                                combine_ops=settings["combine_ops"], num_cells=args.num_cells,
                                penultimate_filters=args.penultimate_filters, **common)
    return LayerwiseHyperModel(num_layers=args.num_layers, **common)


def _make_tuner(args, settings, data, report, directory, overwrite, momentum):
    from tuners.nas_tuner import NASTuner

    class ReportingTuner(NASTuner):
        def on_trial_begin(self, trial):
            report.trial_began(trial)
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            report.trial_ended(self, trial)

    oracle = make_oracle(
        args.search_strategy, max_trials=args.trials, seed=args.seed,
        max_consecutive_failed_trials=max(3, args.trials),
        update_every=settings["update_every"],
        population_size=args.population_size, sample_size=args.sample_size,
    )
    estimator = _make_estimator(args, report)
    selection = None
    if args.estimator in ("shared", "fresh"):
        from tuners.final_selection import FinalSelection

        selection = FinalSelection(
            num_standalone=DEFAULT_FINALISTS if args.finalists is None else args.finalists,
            # Many short trainings: the same budget as 3 finalists of --epochs each, spent on
            # 3x the candidates (benchmarks/selection_policy.py).
            standalone_epochs=max(1, round(args.epochs / 3)), seed=args.seed)
    tuner = ReportingTuner(
        _make_hypermodel(args, settings, data, momentum), oracle,
        estimator=estimator, directory=directory, project_name="tuner",
        overwrite=overwrite, final_selection=selection,
    )
    if args.tensorboard:
        from tuners.tensorboard_log import ControllerScalars

        tuner.controller_scalars = ControllerScalars(tuner.project_dir)
    return tuner


def _write_report(out):
    from tuners.report import write_report

    return write_report(out, os.path.join(out, REPORT_FILE))


def run_search(args, data=None):
    """Runs (or resumes) a search; returns `(best_genotype, summary dict)`."""
    _check_options(args)
    out = os.path.abspath(args.output_dir)
    utils.check_writable(out)
    data = data or utils.load_data(args, args.batch_size)
    settings = _settings(args, data)
    settings_path = os.path.join(out, SEARCH_FILE)
    resume = os.path.isfile(settings_path) and not args.overwrite
    if resume:
        previous, settings = _resumed_settings(utils.read_json(settings_path), settings,
                                               args.update_every is not None)
        if previous != settings:
            changed = sorted(k for k in {**previous, **settings}
                             if previous.get(k) != settings.get(k))
            raise utils.CLIError(
                f"{out!r} holds a search with other settings ({', '.join(changed)}); pass "
                "--overwrite to start afresh or choose another --output-dir"
            )
    os.makedirs(out, exist_ok=True)
    write_json(settings_path, settings)
    rows_path = os.path.join(out, TRIALS_FILE)
    rows = utils.read_json(rows_path) if resume and os.path.isfile(rows_path) else []
    report = _SearchReport(rows_path, rows, args.estimator)
    steps = min(data.steps_per_epoch, args.steps_per_epoch or data.steps_per_epoch)
    momentum = utils.bn_momentum(args.bn_momentum, steps * args.epochs)
    tuner = _make_tuner(args, settings, data, report, out, overwrite=not resume,
                        momentum=momentum)
    estimation_path = os.path.join(out, ESTIMATION_FILE)
    previous = None
    if resume and os.path.isfile(estimation_path):
        previous = utils.read_json(estimation_path)
        previous = previous.get("scored") if isinstance(previous, dict) else None
    estimation = _Estimation(estimation_path, args.estimator, tuner.estimator, report, previous)

    def after_trial():
        estimation.write()
        if args.report:
            _write_report(out)

    report.after_trial = after_trial
    done = sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
    budget = f", at most {args.max_minutes:g} minutes" if args.max_minutes else ""
    scorer = "" if args.estimator == "train" else f", {args.estimator} weights"
    print(f"{'Resuming' if resume else 'Starting'} the {args.space} search "
          f"({args.search_strategy}{scorer}) in {out}: {args.trials} trials{budget} on "
          f"{data.name} {tuple(data.image_shape)}, {data.train_size} train / "
          f"{data.validation_size} validation images"
          + (f" ({done} trials done)" if resume else ""), flush=True)
    report.header()
    for row in report.rows:
        report.print_row(row)
    # The data is a tf.data pipeline, shuffled each epoch by the pipeline itself: `fit`'s own
    # `shuffle=True` would be ignored (with a warning on every trial).
    fit = dict(validation_data=data.validation, epochs=args.epochs, verbose=0, shuffle=False)
    if args.steps_per_epoch:
        fit["steps_per_epoch"] = args.steps_per_epoch
    tuner.search(data.train, max_minutes=args.max_minutes, **fit)
    if tuner.stopped_by_time_budget:
        done = sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
        print(f"Time budget of {args.max_minutes:g} minutes spent: {done} of {args.trials} "
              "trials done; run again to continue.", flush=True)
    num_scored = estimation.write()
    summary = {"estimation": estimation_path}
    if args.report:
        summary["report"] = _write_report(out)
    top = _best_entries(tuner, args)
    if not top:
        raise utils.CLIError("no trial completed, so there is no best genotype (see the table "
                             "above)")
    best, top = [g for g, _ in top], [entry for _, entry in top]
    write_json(os.path.join(out, BEST_FILE), top[0])
    write_json(os.path.join(out, TOP_FILE), top)
    summary = {"best_genotype": os.path.join(out, BEST_FILE),
               "top_genotypes": os.path.join(out, TOP_FILE),
               "trials": os.path.join(out, TRIALS_FILE), **summary,
               "best_score": top[0]["score"], "best_trial": top[0]["trial"],
               "num_scored": num_scored,
               "stopped_by_time_budget": tuner.stopped_by_time_budget}
    print(f"{num_scored} architectures scored ({args.estimator} estimator)")
    if tuner.final_ranking:
        first = top[0]
        standalone, estimate = first["standalone_val_accuracy"], first["estimate"]
        print("Final selection: standalone val_accuracy "
              + ("-" if standalone is None else f"{standalone:.4f}")
              + f" ({first['estimate_kind']} "
              + ("-" if estimate is None else f"{estimate:.4f}") + ")")
    else:
        print(f"Best trial {top[0]['trial']}: val_accuracy {top[0]['score']:.4f}")
    print(f"  {best[0]}")
    if args.space == "nasnet":
        from nasnet_tf.diagram import format_genotype

        print(format_genotype(best[0]))
        cells = utils.draw(best[0], os.path.join(out, "cells"))
        summary["diagrams"] = [p for p in cells if not p.endswith(".dot")]
    return best[0], summary


def _best_entries(tuner, args):
    """`(genotype, entry)` of the best, each entry as `best_genotype(s).json` write it, every
    number labelled: the final selection's ranking (standalone score and the estimate it was
    picked by), or the best trials (children trained standalone by the search itself)."""
    decode = tuner.hypermodel.decode
    if tuner.final_ranking:
        return [(decode(r["values"]), {
            "genotype": r["genotype"], "trial": None,
            "score": r["score"], "standalone_val_accuracy": r["standalone_val_accuracy"],
            "standalone": None if r["standalone_epochs"] is None else (
                f"trained from scratch for {r['standalone_epochs']} epoch"
                f"{'' if r['standalone_epochs'] == 1 else 's'}, scored on the validation "
                "data (final selection)"),
            "standalone_scores": r["standalone_scores"],
            "estimate": r["estimate"], "estimate_kind": r["estimate_kind"],
        }) for r in tuner.final_ranking[: args.top]]
    return [(decode(t.hyperparameters), {
        "genotype": decode(t.hyperparameters).to_dict(),
        "trial": t.trial_id, "score": float(t.score),
        "standalone_val_accuracy": float(t.score) if args.estimator == "train" else None,
        "standalone": f"the trial's child trained from scratch for {args.epochs} epochs"
                      if args.estimator == "train" else None,
        "estimate": None if args.estimator == "train" else float(t.score),
        "estimate_kind": None if args.estimator == "train" else f"trial val_accuracy "
                         f"({args.estimator} estimator)",
    }) for t in best_trials(tuner.oracle, args.top)]


def run(args):
    _, summary = run_search(args)
    utils.print_artefacts(summary)
    return 0
