"""`tuners.SearchRun`, the search of `nasnet-tf search` as a library object: the same seeded
search run from Python and from the command line writes the same files and prints the same
table; its listeners see each event once, in order; its arguments are checked before anything
is written, in Keras' wording."""

import json

import keras
import pytest

from nasnet_tf.cli import main
from nasnet_tf.cli import search as cli_search
from nasnet_tf.data import load_dataset
from tuners import FinalSelection, SearchListener, SearchRun, search_run
from tuners.search_report import REPORT_FILE

# The tiniest NASNet-space search of tests/test_cli_search.py, on the built-in digits (loaded
# as `--dataset digits --batch-size 32` loads them).
TINY = dict(trials=2, epochs=1, steps_per_epoch=2, num_blocks=2, penultimate_filters=24)
TINY_ARGV = ["--trials", "2", "--epochs", "1", "--steps-per-epoch", "2", "--num-blocks", "2",
             "--penultimate-filters", "24", "--batch-size", "32"]
RESULTS = ("search.json", "trials.json", "best_genotype.json", "best_genotypes.json",
           "estimation.json")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", batch_size=32)


def _without_clock(name, content):
    """A result file's content without its wall-clock fields (trial times)."""
    if name == "trials.json":
        return [{k: v for k, v in row.items() if k != "seconds"} for row in content]
    if name == "estimation.json":
        return {**content, "scored": [entry[1:] for entry in content["scored"]]}
    return content


def _results(directory):
    return {name: _without_clock(name, json.loads((directory / name).read_text()))
            for name in RESULTS}


def _printed(out, directory):
    """What a search printed from its table's header to its result, the directory named X."""
    lines = out.replace(str(directory), "X").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Starting"))
    end = next((i for i, line in enumerate(lines) if line == "Artefacts:"), len(lines))
    return lines[start:end]


# Plumbing above the backend (the children it trains run under both in test_cli_search).
@pytest.mark.tf_only
def test_the_library_and_the_command_line_write_the_same_search(capsys, tmp_path):
    # The data pipelines' shuffles and augmentation draw from the global random state as it
    # is when they are made: the same state before each search makes them the same.
    keras.utils.set_random_seed(0)
    summary = SearchRun(tmp_path / "py", **TINY).search(load_dataset("digits", batch_size=32))
    py_out = capsys.readouterr().out
    keras.utils.set_random_seed(0)
    assert main(["search", *TINY_ARGV, "--output-dir", str(tmp_path / "cli")]) == 0
    cli_out = capsys.readouterr().out

    py, cli = _results(tmp_path / "py"), _results(tmp_path / "cli")
    assert py == cli
    rows = py["trials.json"]
    assert len(rows) == 2 and all(r["params"] > 0 and r["entropy"] > 0 for r in rows)
    assert py["best_genotype.json"] == py["best_genotypes.json"][0]
    assert summary["best_score"] == py["best_genotype.json"]["score"] == max(
        r["accuracy"] for r in rows)
    assert summary["num_scored"] == py["estimation.json"]["num_scored"] == 2
    assert _printed(py_out, tmp_path / "py") == _printed(cli_out, tmp_path / "cli")
    assert "Best trial" in py_out and "Normal cell:" in py_out
    assert [p.rsplit("/", 1)[-1] for p in summary["diagrams"]] == [
        "normal_cell.png", "normal_cell.svg", "reduction_cell.png", "reduction_cell.svg"]
    assert all((tmp_path / "py" / "cells" / name).is_file()
               for name in ("normal_cell.png", "reduction_cell.svg"))


class _Events(SearchListener):
    def __init__(self, directory):
        self.directory = directory
        self.events = []

    def search_began(self, tuner):
        self.events.append("search_began")

    def trial_began(self, tuner, trial):
        self.events.append(f"trial_began {trial.trial_id}")

    def child_built(self, tuner, trial, model):
        self.events.append(f"child_built {trial.trial_id}")

    def trial_ended(self, tuner, trial):
        # The run's own listeners ran first: this trial's row is written already.
        rows = json.loads((self.directory / "trials.json").read_text())
        assert rows[-1]["trial"] == trial.trial_id
        self.events.append(f"trial_ended {trial.trial_id}")

    def search_ended(self, tuner):
        self.events.append("search_ended")


# Plumbing above the backend (the children it trains run under both in test_cli_search).
@pytest.mark.tf_only
def test_listeners_see_each_event_in_order_and_a_rerun_resumes(capsys, tmp_path, digits):
    args = dict(space="layerwise", num_layers=1, strategy="random", trials=2, epochs=1,
                steps_per_epoch=2, verbose=0)
    events = _Events(tmp_path)
    run = SearchRun(tmp_path, listeners=[events], report=True, **args)
    summary = run.search(digits)
    assert capsys.readouterr().out == ""  # verbose=0
    assert events.events == [
        "search_began",
        "trial_began 0", "child_built 0", "trial_ended 0",
        "trial_began 1", "child_built 1", "trial_ended 1",
        "search_ended",
    ]
    assert summary["report"] == str(tmp_path / REPORT_FILE) and (tmp_path / REPORT_FILE).is_file()
    assert "diagrams" not in summary  # no cells in the layer-wise space
    assert run.best_genotype == run.best_genotypes[0] and len(run.best_genotypes) == 2
    before = _results(tmp_path)

    # Run again: it resumes, trains nothing, and writes the same results.
    again = _Events(tmp_path)
    rerun = SearchRun(tmp_path, listeners=[again], **args)
    assert rerun.changed_settings(digits) == []
    rerun.search(digits)
    assert again.events == ["search_began", "search_ended"]
    assert _results(tmp_path) == before

    other = SearchRun(tmp_path, **{**args, "trials": 3})
    assert other.changed_settings(digits) == ["trials"]
    with pytest.raises(ValueError, match=r"holds a search with other settings \(trials\): pass "
                       r"`overwrite=True`.*Received: trials=3"):
        other.search(digits)
    assert SearchRun(tmp_path, overwrite=True, **{**args, "trials": 3}).changed_settings(
        digits) == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(strategy="bayesian"), r"`strategy` must be one of \['controller', 'evolution', "
                                r"'random'\]. Received: strategy='bayesian'"),
    (dict(estimator="bayes"), r"`estimator` must be one of .*Received: estimator='bayes'"),
    (dict(trials=0), r"`trials` must be an integer >= 1. Received: trials=0"),
    (dict(population_size=4), r"apply to strategy='evolution' only"),
    (dict(candidates_per_trial=5), r"`candidates_per_trial` applies to estimator='shared'"),
    (dict(finalists=3), r"`finalists` applies to estimator='fresh' or 'shared' only"),
    (dict(space="layerwise", estimator="fresh"), r"it needs space='nasnet'. Received: "
                                                 r"space='layerwise'"),
    (dict(space="layerwise", ops=["identity"]), r"\['ops'\] apply to space='nasnet' only"),
    (dict(estimator="shared", penultimate_filters=24), r"a multiple of 48.*Received: "
                                                       r"penultimate_filters=24"),
    (dict(ops=["identity", "identity"]), r"`ops` must be a list of distinct names"),
    (dict(ops=["conv_9x9"]), r"`ops` must be a list of distinct names from \[.*sep_conv_3x3"),
    (dict(max_minutes=0), r"`max_minutes` must be a positive number"),
    (dict(listeners=[object()]), r"`listeners` must be a list of `tuners.SearchListener`"),
])
def test_arguments_are_checked_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchRun(tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def test_data_must_be_an_image_dataset(tmp_path):
    with pytest.raises(ValueError, match=r"`data` must be a `nasnet_tf.data.ImageDataset`"):
        SearchRun(tmp_path / "run").search(([0], [0]))
    assert not (tmp_path / "run").exists()


def test_the_command_line_choices_mirror_the_library():
    # The CLI keeps its own copies so that `--help` imports no Keras.
    assert cli_search.STRATEGIES == search_run.STRATEGIES
    assert cli_search.ESTIMATORS == search_run.ESTIMATORS
    assert cli_search.DEFAULT_CANDIDATES_PER_TRIAL == search_run.DEFAULT_CANDIDATES_PER_TRIAL
    assert cli_search.DEFAULT_FINALISTS == FinalSelection().num_standalone
    assert cli_search.REPORT_FILE == REPORT_FILE


@pytest.mark.parametrize("estimator, final_selection, said", [
    ("fresh", True, "; the final selection then trains the best few standalone)"),
    ("fresh", False, "inside the super-network)"),
    ("shared", True, "; the final selection then trains the best few standalone)"),
])
def test_the_table_header_says_a_final_selection_only_where_one_follows(
        tmp_path, estimator, final_selection, said):
    from tuners.search_outputs import TrialTable

    lines = []
    TrialTable(tmp_path / "trials.json", estimator=estimator, print_fn=lines.append,
               final_selection=final_selection).search_began(None)
    assert lines[0].startswith(f"({'fresh' if estimator == 'fresh' else 'ws_est'}: ")
    assert lines[0].endswith(said), lines[0]
    assert ("final selection" in lines[0]) == final_selection
