"""`nasnet-tf train`: train a genotype with a preset's layout and recipe (resumable;
`--overwrite` starts afresh)."""

import os
import shutil

from nasnet_tf import multihost
from nasnet_tf.cli import args as cli_args
from nasnet_tf.cli import utils
from nasnet_tf.io_utils import write_json


def register(subparsers):
    p = subparsers.add_parser(
        "train", help="train a genotype with a preset layout",
        description="Train a genotype (JSON file or nasnet_a) with a preset's layout and recipe "
        "(auxiliary head, drop path, label smoothing, cosine or exponential decay); resumable; "
        "writes model.keras and its metadata.")
    p.add_argument("genotype", help="a genotype JSON file of NASNet cells or of a layer-wise "
                   "CNN (e.g. a search's best_genotype.json) or a name: nasnet_a")
    add_train_args(p)
    cli_args.add_data_args(p, batch_size=32)
    p.add_argument("--output-dir", default=os.path.join(utils.DEFAULT_RUNS, "train"))
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh, discarding the training run (checkpoints, model, "
                   "history) in --output-dir")
    cli_args.add_process_args(p)
    # `run` checks the process flags, then imports the backend itself: a bad combination is a
    # one-line error without TensorFlow or JAX, and JAX joins its processes before first use.
    p.set_defaults(func=run, needs_backend=False)


def add_train_args(p, epochs=10, num_cells=1, penultimate_filters=48, prefix=""):
    """The training arguments of `train` (and, with `prefix="train-"`, of `demo`)."""
    from nasnet_tf.presets import PRESETS

    p.add_argument("--preset", choices=sorted(PRESETS), default="cifar",
                   help="layout and training recipe (default: %(default)s)")
    p.add_argument(f"--{prefix}epochs", type=cli_args.positive_int, default=epochs,
                   help="training epochs (default: %(default)s)")
    if not prefix:
        p.add_argument("--steps-per-epoch", type=cli_args.positive_int)
    p.add_argument(f"--{prefix}num-cells", type=cli_args.positive_int, default=num_cells,
                   help="N of the trained network (default: %(default)s)")
    p.add_argument(f"--{prefix}penultimate-filters", type=cli_args.positive_int,
                   default=penultimate_filters,
                   help="P of the trained network, a multiple of 24 (default: %(default)s)")
    p.add_argument("--no-aux-head", action="store_true", help="leave out the auxiliary head")
    p.add_argument("--drop-path-keep-prob", type=float)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--strategy", choices=("auto", "default", "mirrored", "data_parallel"),
                   default="auto", help="'auto' uses every local GPU (MirroredStrategy under "
                   "TensorFlow, DataParallel under JAX)")
    p.add_argument(f"--{prefix}bn-momentum", dest="train_bn_momentum", type=cli_args.momentum,
                   help="batch-norm momentum (default: NASNet's 0.9997 for long runs, lower "
                   "for short ones so the inference statistics settle)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)


# What a training run leaves in its --output-dir (`nasnet_tf.training.train` and `run_train`);
# `--overwrite` removes these and nothing else.
_RUN_DIRS = ("checkpoints", "logs")  # training.CHECKPOINT_DIR; TensorBoard's
_RUN_FILES = ("config.json", "history.json", "genotype.json", "model.keras",
              "model.keras.sha256", "model.keras.json")


def discard_run(out):
    """Removes the training run in `out` (checkpoints, TensorBoard logs, configuration,
    history, model and its metadata); other files there are left alone. Returns whether
    anything was removed."""
    removed = False
    for name in _RUN_DIRS:
        path = os.path.join(out, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
            removed = True
    for name in _RUN_FILES:
        path = os.path.join(out, name)
        if os.path.isfile(path):
            os.remove(path)
            removed = True
    return removed


def run_train(args, genotype, data=None, name=None):
    """Trains `genotype` with `nasnet_tf.training.train` (resumable in `args.output_dir`, or
    afresh with `args.overwrite`); writes `model.keras` and its metadata there. Returns
    `(model, summary dict)`."""
    from nasnet_tf import serving
    from nasnet_tf.layerwise import LayerwiseGenotype
    from nasnet_tf.training import TrainConfig, train

    # A 2016 layer-wise genotype trains as its plain CNN with the preset's recipe; the NASNet
    # layout flags (N, P, aux head, drop path) do not apply to it.
    layerwise = isinstance(genotype, LayerwiseGenotype)

    out = os.path.abspath(args.output_dir)
    utils.check_writable(out)
    overwrite = getattr(args, "overwrite", False)
    chief = multihost.is_chief()
    # `train` resumes from the checkpoints in `out`; they must belong to this genotype.
    genotype_path = os.path.join(out, "genotype.json")
    if (not overwrite and os.path.isfile(genotype_path)
            and utils.read_json(genotype_path) != genotype.to_dict()):
        raise utils.CLIError(
            f"{out!r} holds a training run of another genotype; pass --overwrite to discard it "
            "or choose another --output-dir to train this genotype"
        )
    data = data or utils.load_data(args, args.batch_size)
    model_kwargs = {"num_cells": args.num_cells, "penultimate_filters": args.penultimate_filters}
    if args.no_aux_head:
        model_kwargs["auxiliary_head"] = False
    if args.drop_path_keep_prob is not None:
        model_kwargs["drop_path_keep_prob"] = args.drop_path_keep_prob
    steps = min(data.steps_per_epoch, args.steps_per_epoch or data.steps_per_epoch)
    model_kwargs["batch_norm_momentum"] = utils.bn_momentum(args.train_bn_momentum,
                                                            steps * args.epochs)
    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, model_kwargs=model_kwargs,
                     strategy=args.strategy, seed=args.seed, verbose=args.verbose,
                     steps_per_epoch=args.steps_per_epoch)
    if args.learning_rate is not None:
        overrides["learning_rate"] = args.learning_rate
    config = TrainConfig.for_preset(args.preset, **overrides)
    if overwrite and chief and discard_run(out):
        print(f"Discarded the earlier training run in {out} (--overwrite)", flush=True)
    # The other processes look for checkpoints only once process 0 has discarded them.
    multihost.barrier("nasnet_tf.cli.train.discarded")
    if layerwise:
        layout = f"layer-wise CNN of {len(genotype.layers)} layers, {args.preset} recipe"
    else:
        layout = f"{args.preset} layout, N={args.num_cells}, P={args.penultimate_filters}"
    print(f"Training {name or 'the genotype'} ({layout}) on {data.name} "
          f"{tuple(data.image_shape)} for {args.epochs} epochs in {out}", flush=True)
    if chief:
        os.makedirs(out, exist_ok=True)
        write_json(genotype_path, genotype.to_dict())
    history = train(genotype, data, config, out)
    model = history.model
    accuracy = history.history.get("val_accuracy", [None])[-1]
    meta = serving.model_metadata(
        model, preset=args.preset, class_names=list(data.class_names),
        extra={"dataset": args.dataset, "augment": data.augment,
               "training": {"epochs": args.epochs, "val_accuracy": accuracy},
               **({"layerwise_genotype": genotype.to_dict()} if layerwise else {})},
    )
    meta["format"] = "keras"
    keras_path = os.path.join(out, "model.keras")
    if chief:
        write_json(serving.metadata_path(keras_path), meta)
    if accuracy is not None:
        print(f"Validation accuracy after {args.epochs} epochs: {accuracy:.4f}")
    return model, {"model": keras_path, "metadata": serving.metadata_path(keras_path),
                   "history": os.path.join(out, "history.json"), "val_accuracy": accuracy}


def run(args):
    group = multihost.settings(args.coordinator, args.num_processes, args.process_id)
    utils.prepare_backend()
    if group is not None:
        multihost.initialize(args.coordinator, args.num_processes, args.process_id)
        print(f"Process {multihost.process_index()} of {multihost.process_count()} "
              f"(coordinator {group.coordinator or 'detected'})", flush=True)
    genotype = utils.load_genotype(args.genotype)
    _, summary = run_train(args, genotype, name=args.genotype)
    utils.print_artefacts(summary)
    return 0
