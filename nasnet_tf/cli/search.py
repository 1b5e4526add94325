"""`nasnet-tf search`: a NAS search (controller, evolution or random) with a per-trial table.

The search is resumable (run it again with the same `--output-dir`), writes the best genotypes
as JSON and draws the best cells. This module is the only part of `nasnet_tf` that imports
`tuners` (lazily, when a search runs).
"""

import os

from nasnet_tf.cli import args as cli_args
from nasnet_tf.cli import utils
from nasnet_tf.io_utils import write_json

SEARCH_FILE = "search.json"
TRIALS_FILE = "trials.json"
BEST_FILE = "best_genotype.json"
TOP_FILE = "best_genotypes.json"
STRATEGIES = ("controller", "evolution", "random")
_TABLE = "{:>5}  {:<58}  {:>9}  {:>8}  {:>7}  {:>8}"


def register(subparsers):
    p = subparsers.add_parser(
        "search", help="run a NAS search (RNN controller, evolution or random) on a dataset",
        description="Search the NASNet cell space (or the 2016 layer-wise space) with the RNN "
        "controller, regularized evolution or random search: one small child trained per "
        "trial, a per-trial table, resumable (run again with the same --output-dir), the best "
        "genotypes written as JSON and drawn.")
    add_search_args(p, strategies=True)
    cli_args.add_data_args(p, batch_size=64)
    p.add_argument("--output-dir", default=os.path.join(utils.DEFAULT_RUNS, "search"))
    p.add_argument("--overwrite", action="store_true", help="start afresh, discarding a "
                   "search in --output-dir")
    p.set_defaults(func=run, needs_backend=True)


def add_search_args(p, strategies=False):
    """The search arguments of `search` and `demo`; `strategies` adds `--strategy`, its options
    and `--max-minutes` (the demo always runs the controller, without a time budget)."""
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
        p.add_argument("--max-minutes", type=cli_args.positive_float,
                       help="wall-time budget: no trial starts after this many minutes (the "
                       "running one finishes), then the results are written as at a normal end; "
                       "a resumed search counts from its own start")
    else:
        p.set_defaults(search_strategy="controller", population_size=None, sample_size=None,
                       max_minutes=None)
    p.add_argument("--space", choices=("nasnet", "layerwise"), default="nasnet",
                   help="NASNet cells (2017) or the layer-wise 2016 space (default: nasnet)")
    p.add_argument("--trials", type=cli_args.positive_int, default=6,
                   help="children to train (default: %(default)s)")
    p.add_argument("--epochs", type=cli_args.positive_int, default=3,
                   help="epochs per child (default: %(default)s)")
    p.add_argument("--steps-per-epoch", type=cli_args.positive_int, help="cap on a child's steps")
    p.add_argument("--num-blocks", type=cli_args.positive_int, default=5,
                   help="B, blocks per cell")
    p.add_argument("--num-layers", type=cli_args.positive_int, default=4,
                   help="layers of a layer-wise child")
    p.add_argument("--num-cells", type=cli_args.positive_int, default=1,
                   help="N of the child networks")
    p.add_argument("--penultimate-filters", type=cli_args.positive_int, default=48,
                   help="P of the child networks, a multiple of 24 (default: %(default)s)")
    p.add_argument("--update-every", type=cli_args.positive_int, default=3,
                   help="rewards per controller update (default: %(default)s)")
    p.add_argument("--top", type=cli_args.positive_int, default=3, help="best genotypes to keep")
    p.add_argument("--bn-momentum", type=cli_args.momentum, help="batch-norm momentum of the "
                   "children (default: from the run's length, see `bn_momentum`)")


def make_oracle(strategy, *, max_trials, seed, max_consecutive_failed_trials=3,
                update_every=3, population_size=None, sample_size=None):
    """The KerasTuner oracle of a search strategy, maximising `val_accuracy`.

    Args:
        strategy: one of `STRATEGIES`: `"controller"` (`tuners.oracle.ControllerOracle`),
            `"evolution"` (`tuners.evolution.EvolutionOracle`) or `"random"`
            (`keras_tuner.oracles.RandomSearchOracle`).
        max_trials, seed, max_consecutive_failed_trials: the oracle's.
        update_every: rewards per controller update (controller only).
        population_size, sample_size: evolution only; None keeps the oracle's defaults.

    Example:

    >>> make_oracle("random", max_trials=2, seed=0).max_trials
    2
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown search strategy {strategy!r}. Accepted: {list(STRATEGIES)}")
    evolution_args = _given(population_size=population_size, sample_size=sample_size)
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

    return RandomSearchOracle(**common)


def _given(**kwargs):
    return {k: v for k, v in kwargs.items() if v is not None}


def _check_strategy_options(args):
    given = _given(population_size=args.population_size, sample_size=args.sample_size)
    if given and args.search_strategy != "evolution":
        flags = " and ".join(f"--{k.replace('_', '-')}" for k in given)
        raise utils.CLIError(f"{flags} apply to --strategy evolution only (got --strategy "
                             f"{args.search_strategy})")


def _settings(args, data):
    settings = {
        "space": args.space, "dataset": args.dataset, "image_shape": list(data.image_shape),
        "classes": data.num_classes, "trials": args.trials, "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch, "batch_size": args.batch_size,
        "num_blocks": args.num_blocks, "num_layers": args.num_layers,
        "num_cells": args.num_cells, "penultimate_filters": args.penultimate_filters,
        "update_every": args.update_every, "seed": args.seed, "augment": data.augment,
        "strategy": args.search_strategy,
    }
    if args.search_strategy == "evolution":
        settings.update(population_size=args.population_size, sample_size=args.sample_size)
    return settings


def _short(text, width=58):
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


class _SearchReport:
    """Collects and prints the per-trial table; rows persist in `trials.json` (resume). The
    reward and entropy columns are the controller's ("-" under other strategies)."""

    def __init__(self, path, rows):
        self.path = path
        self.rows = rows
        self.params = {}

    def header(self):
        print(_TABLE.format("trial", "genotype", "params", "accuracy", "reward", "entropy"))

    def print_row(self, row):
        def num(value, fmt):
            return "-" if value is None else format(value, fmt)

        print(_TABLE.format(row["trial"], _short(row["genotype"]), num(row["params"], ","),
                            num(row["accuracy"], ".4f"), num(row["reward"], ".4f"),
                            num(row["entropy"], ".3f")), flush=True)

    def trial_ended(self, tuner, trial):
        import numpy as np

        oracle = tuner.oracle
        reward = entropy = None
        for trial_id, value, _ in getattr(oracle, "rewards", []):
            if trial_id == trial.trial_id:
                reward = value
        decisions = getattr(oracle, "trial_decisions", {}).get(trial.trial_id)
        if decisions is not None and getattr(oracle, "controller", None) is not None:
            entropy = float(oracle.controller.entropy(np.array([decisions]))[0])
        row = {
            "trial": trial.trial_id,
            "status": trial.status,
            "genotype": str(tuner.hypermodel.decode(trial.hyperparameters)),
            "params": self.params.get(trial.trial_id),
            "accuracy": None if trial.score is None else float(trial.score),
            "reward": reward,
            "entropy": entropy,
        }
        self.rows = [r for r in self.rows if r["trial"] != trial.trial_id] + [row]
        write_json(self.path, self.rows)
        self.print_row(row)


def _make_tuner(args, data, report, directory, overwrite, momentum):
    import dataclasses

    from tuners.estimation import TrainAndEvaluate
    from tuners.nas_tuner import LayerwiseTuner, NASNetTuner

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

    base = NASNetTuner if args.space == "nasnet" else LayerwiseTuner

    class ReportingTuner(base):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            report.trial_ended(self, trial)

    oracle = make_oracle(
        args.search_strategy, max_trials=args.trials, seed=args.seed,
        max_consecutive_failed_trials=max(3, args.trials), update_every=args.update_every,
        population_size=args.population_size, sample_size=args.sample_size,
    )
    common = dict(
        input_shape=tuple(data.image_shape), classes=data.num_classes, oracle=oracle,
        estimator=CountingEstimator(), directory=directory, project_name="tuner",
        overwrite=overwrite,
        batch_norm_momentum=momentum,  # the children's, set by the tuners' hypermodels
    )
    if args.space == "nasnet":
        return ReportingTuner(num_blocks=args.num_blocks, num_cells=args.num_cells,
                              penultimate_filters=args.penultimate_filters, **common)
    return ReportingTuner(num_layers=args.num_layers, **common)


def run_search(args, data=None):
    """Runs (or resumes) a search; returns `(best_genotype, summary dict)`."""
    _check_strategy_options(args)
    out = os.path.abspath(args.output_dir)
    utils.check_writable(out)
    data = data or utils.load_data(args, args.batch_size)
    settings = _settings(args, data)
    settings_path = os.path.join(out, SEARCH_FILE)
    resume = os.path.isfile(settings_path) and not args.overwrite
    if resume:
        previous = utils.read_json(settings_path)
        previous.setdefault("strategy", "controller")  # searches written before --strategy
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
    report = _SearchReport(rows_path, rows)
    steps = min(data.steps_per_epoch, args.steps_per_epoch or data.steps_per_epoch)
    momentum = utils.bn_momentum(args.bn_momentum, steps * args.epochs)
    tuner = _make_tuner(args, data, report, out, overwrite=not resume, momentum=momentum)
    done = sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
    budget = f", at most {args.max_minutes:g} minutes" if args.max_minutes else ""
    print(f"{'Resuming' if resume else 'Starting'} the {args.space} search "
          f"({args.search_strategy}) in {out}: {args.trials} trials{budget} on {data.name} "
          f"{tuple(data.image_shape)}, {data.train_size} train / {data.validation_size} "
          "validation images" + (f" ({done} trials done)" if resume else ""), flush=True)
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
    best = tuner.get_best_genotypes(args.top)
    if not best:
        raise utils.CLIError("no trial completed, so there is no best genotype (see the table "
                             "above)")
    scored = [t for t in tuner.oracle.get_best_trials(args.top) if t.status == "COMPLETED"]
    write_json(os.path.join(out, BEST_FILE), best[0].to_dict())
    write_json(os.path.join(out, TOP_FILE), [
        {"trial": t.trial_id, "score": float(t.score), "genotype": g.to_dict()}
        for t, g in zip(scored, best)
    ])
    summary = {"best_genotype": os.path.join(out, BEST_FILE),
               "top_genotypes": os.path.join(out, TOP_FILE),
               "trials": os.path.join(out, TRIALS_FILE),
               "best_score": float(scored[0].score), "best_trial": scored[0].trial_id,
               "stopped_by_time_budget": tuner.stopped_by_time_budget}
    print(f"Best trial {scored[0].trial_id}: val_accuracy {scored[0].score:.4f}")
    print(f"  {best[0]}")
    if args.space == "nasnet":
        from nasnet_tf.diagram import format_genotype

        print(format_genotype(best[0]))
        cells = utils.draw(best[0], os.path.join(out, "cells"))
        summary["diagrams"] = [p for p in cells if not p.endswith(".dot")]
    return best[0], summary


def run(args):
    _, summary = run_search(args)
    utils.print_artefacts(summary)
    return 0
