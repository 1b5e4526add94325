"""Helpers shared by the `nasnet-tf` commands: the one-line user error, files, genotypes,
the quiet TensorFlow start-up.

Nothing here imports TensorFlow, JAX or Keras at module level: `--help`, argument errors and
`show` stay quick (and `prepare_backend` is what imports them, once, for the other commands).
"""

import contextlib
import json
import logging
import os
import re
import sys
import tempfile

DEFAULT_RUNS = "nasnet_runs"


class CLIError(Exception):
    """A user error the command reports in one line (exit status 2)."""


# -- files -------------------------------------------------------------------------------------
def read_json(path):
    """The JSON content of `path`; a missing, unreadable or malformed file is a `CLIError`."""
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CLIError(f"invalid JSON in {path!r}: {e}") from e
    except OSError as e:
        raise CLIError(f"cannot read {path!r}: {e.strerror}") from e


def check_writable(path, what="output"):
    """Fails early, before any work, when files cannot be created at `path` (a directory that
    may not exist yet): its nearest existing ancestor must be a writable directory."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise CLIError(f"cannot write the {what} {path!r}: {probe!r} is not a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".nasnet-tf-probe-")
    except OSError as e:
        raise CLIError(f"cannot write the {what} {path!r}: {e.strerror}") from e
    os.close(fd)
    os.remove(tmp)


def print_artefacts(summary):
    """Prints the paths of a command's summary dict, one per line."""
    print("Artefacts:")
    for key, value in summary.items():
        if isinstance(value, list):
            for item in value:
                print(f"  {key}: {item}")
        elif isinstance(value, str) and os.path.sep in value:
            print(f"  {key}: {value}")


# -- genotypes ---------------------------------------------------------------------------------
def _named_genotypes():
    from nasnet_tf.genotype import NASNET_A

    return {"nasnet_a": NASNET_A}


def load_genotype(spec):
    """A genotype from a name (`nasnet_a`) or a JSON file: a NASNet `Genotype`, or a
    `LayerwiseGenotype` (a 2016 layer-wise architecture, `{"layers": [...]}`, as a layer-wise
    search writes it in best_genotype.json); the file may also be any JSON object with a
    `"genotype"` entry (search results, export metadata)."""
    from nasnet_tf.genotype import Genotype
    from nasnet_tf.layerwise import LayerwiseGenotype

    named = _named_genotypes()
    if spec.lower() in named:
        return named[spec.lower()]
    if not os.path.isfile(spec):
        raise CLIError(
            f"genotype file not found: {spec!r} (give a genotype JSON file or one of "
            f"{sorted(named)})"
        )
    data = read_json(spec)
    if (isinstance(data, dict) and "genotype" in data and "normal" not in data
            and "layers" not in data):
        data = data["genotype"]
    layerwise = isinstance(data, dict) and "layers" in data and "normal" not in data
    try:
        if layerwise:
            return LayerwiseGenotype.from_dict(data)
        return Genotype.from_dict(data)
    except ValueError as e:
        kind = "layer-wise genotype" if layerwise else "genotype"
        raise CLIError(f"{spec!r} is not a valid {kind}: {e}") from e


def draw(genotype, directory, formats=("png", "svg"), engine="auto"):
    """Draws both cells of `genotype` into `directory`; returns the written paths."""
    from nasnet_tf.diagram import draw_genotype

    paths = draw_genotype(genotype, directory, formats=formats, engine=engine)
    return [p for kind in ("normal", "reduction") for p in paths[kind]]


# -- training helpers --------------------------------------------------------------------------
def bn_momentum(setting, total_steps):
    """`nasnet_tf.recipe.bn_momentum`, imported when called (it imports Keras)."""
    from nasnet_tf.recipe import bn_momentum as momentum

    return momentum(setting, total_steps)


def load_data(args, batch_size):
    """The dataset named by `--dataset` through `nasnet_tf.data.load_dataset` (no download
    unless `--download`)."""
    from nasnet_tf.data import load_dataset

    source = args.dataset
    if source != "digits" and (os.sep in source or source.startswith(".")) and not os.path.isdir(
            source):
        raise CLIError(f"dataset directory not found: {source!r}")
    return load_dataset(
        source, data_dir=args.data_dir, download=args.download, image_size=args.image_size,
        batch_size=batch_size, validation_split=args.validation_split, seed=args.seed,
        augment=args.augment,
    )


def require_tensorflow(what):
    """A `CLIError` unless Keras runs on TensorFlow (SavedModel and TFLite need it)."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise CLIError(f"{what} needs the TensorFlow backend (run with KERAS_BACKEND=tensorflow);"
                       f" the current backend is {backend!r}")


# -- a quiet start-up --------------------------------------------------------------------------
# What TensorFlow's native libraries log while they load, before anything has read
# TF_CPP_MIN_LOG_LEVEL: each library's copy of absl logging announces that it logs to stderr
# ("WARNING: All log messages before absl::InitializeLog() ..."), then writes INFO lines
# (oneDNN custom operations on, no CUDA driver found, CPU instructions). Each line starts with
# its severity: I(nfo), W(arning), E(rror), F(atal).
_PREINIT_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"
_NATIVE_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+(\.\d+)?\s+\d+ [^\s:]+:\d+\] ")
_LEVELS = "IWEF"


def _tf_log_level():
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def filter_native_log(text, min_level):
    """The lines of `text` to show at TF_CPP_MIN_LOG_LEVEL `min_level`: absl's pre-init banner
    and native log lines below that level go; errors, fatal messages and anything that is not
    such a log line stay.

    Example:

    >>> filter_native_log("I0000 00:00:1.5 7 port.cc:153] oneDNN on\\nboom\\n", 3)
    'boom\\n'
    """
    kept = []
    dropping = False  # the continuation lines of a dropped message
    for line in text.splitlines(keepends=True):
        match = _NATIVE_LOG_LINE.match(line)
        if line.startswith(_PREINIT_BANNER):
            dropping = min_level >= 1
        elif match:
            # Errors stay whatever the level: they are what a user must see.
            dropping = _LEVELS.index(match.group(1)) < min(min_level, 2)
        elif not line.startswith("To enable the following instructions"):  # a continuation
            dropping = False
        if not dropping:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _native_stderr_filtered(min_level):
    """Runs the body with file descriptor 2 (where native libraries log) captured, then writes
    what the body logged back to `sys.stderr` through `filter_native_log`."""
    try:
        fd = sys.__stderr__.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded): nothing to hide
        yield
        return
    sys.__stderr__.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), fd)
        try:
            yield
        finally:
            sys.__stderr__.flush()
            os.dup2(saved, fd)
            os.close(saved)
            captured.seek(0)
            text = filter_native_log(captured.read().decode(errors="replace"), min_level)
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


def prepare_backend():
    """Imports TensorFlow (when installed) and Keras quietly, once, before a command uses them.

    TF_CPP_MIN_LOG_LEVEL defaults to 3 (the user's own setting is kept), and the start-up lines
    TensorFlow's native libraries write before they read it are held to the same level; native
    errors are always shown.
    """
    import importlib
    import importlib.util

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow first: under JAX too, the data pipelines (tf.data, TFDS) import it later.
    needed = [name for name in ("tensorflow", "keras")
              if name not in sys.modules and importlib.util.find_spec(name) is not None]
    if not needed:
        return
    with _native_stderr_filtered(_tf_log_level()):
        for name in needed:
            importlib.import_module(name)
    if "tensorflow" in needed:
        # Each child of a search (and each model of the demo) is a new model whose train and
        # test functions trace once; TensorFlow counts traces per function code across models
        # and warns of "retracing", which is expected here.
        logging.getLogger("tensorflow").addFilter(_NotRetracing())


class _NotRetracing(logging.Filter):
    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()
