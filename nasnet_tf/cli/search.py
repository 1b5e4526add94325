"""`nasnet-tf search`: the arguments of a NAS search, and one call to `tuners.SearchRun`.

The search (controller, evolution or random; children scored by the `train`, `fresh` or
`shared` estimator), its resume checks, time budget and outputs (per-trial table, best
genotypes, `trials.json`, `estimation.json`, cell drawings, report, TensorBoard) are the
library's `tuners.SearchRun`; this module parses and checks the flags, loads the data, and
answers in the CLI's words. This module and `report` are the only parts of `nasnet_tf` that
import `tuners` (lazily, when they run): `--help` and argument errors import no Keras.
"""

import os

from nasnet_tf import validators
from nasnet_tf.cli import args as cli_args
from nasnet_tf.cli import utils
from nasnet_tf.genotype import COMBINE_OPS, OP_NAMES

# The library's (tuners.search_run, tuners.FinalSelection), kept here: --help imports no Keras.
REPORT_FILE = "report.html"
STRATEGIES = ("controller", "evolution", "random")
ESTIMATORS = ("train", "fresh", "shared")
DEFAULT_CANDIDATES_PER_TRIAL = 20
DEFAULT_FINALISTS = 9  # FinalSelection's num_standalone
# SearchRun's arguments, each the flag of the same name.
_RUN_ARGS = ("space", "estimator", "trials", "epochs", "steps_per_epoch", "num_blocks", "ops",
             "combine_ops", "num_layers", "num_cells", "penultimate_filters", "update_every",
             "population_size", "sample_size", "candidates_per_trial", "finalists", "top",
             "bn_momentum", "seed", "max_minutes", "tensorboard", "report", "overwrite")


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
                   "`tuners.controller_oracle.default_update_every`; a resumed search keeps its "
                   "own)")
    p.add_argument("--top", type=cli_args.positive_int, default=3, help="best genotypes to keep")
    p.add_argument("--bn-momentum", type=cli_args.momentum, help="batch-norm momentum of the "
                   "children (default: from the run's length, see `bn_momentum`)")


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


def run_search(args, data=None):
    """Runs (or resumes) a search (`tuners.SearchRun`); returns `(best_genotype, summary)`."""
    _check_options(args)
    out = os.path.abspath(args.output_dir)
    utils.check_writable(out)
    data = data or utils.load_data(args, args.batch_size)
    from tuners.search_run import NoCompletedTrialError, SearchRun

    run = SearchRun(out, strategy=args.search_strategy,
                    **{name: getattr(args, name) for name in _RUN_ARGS})
    changed = run.changed_settings(data, args.dataset)
    if changed:
        raise utils.CLIError(
            f"{out!r} holds a search with other settings ({', '.join(changed)}); pass "
            "--overwrite to start afresh or choose another --output-dir"
        )
    try:
        summary = run.search(data, args.dataset)
    except NoCompletedTrialError:
        raise utils.CLIError("no trial completed, so there is no best genotype (see the table "
                             "above)") from None
    return run.best_genotype, summary


def run(args):
    _, summary = run_search(args)
    utils.print_artefacts(summary)
    return 0
