"""Damaged search state files: fallback to the previous consistent state, or a one-line error.

Each test damages one file of a saved search (the controller `.npz`, `oracle.json`, a
`trial.json`), reloads, and checks the warning or error, that no other file was changed or
deleted (listing and bytes), and that the search then finishes.
"""

import json
import logging
import os
import pathlib
import warnings

import keras_tuner
import pytest
from _evolution_toy import make_tuner as make_evolution_tuner
from _oracle_toy import ToyHyperModel, make_tuner, quiet_small_budgets, trial_ids  # noqa: F401

from nasnet_tf.io_utils import CorruptFileError
from tuners.state_files import PREV_STATE_FILE, SearchStateError

COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED
STATE_LOGGER = "tuners.state_files"


def _snapshot(root):
    """`{relative path: bytes}` of every file under `root`."""
    root = pathlib.Path(root)
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _assert_only_set_aside(before, after, damaged):
    """`after` is `before` with the files in `damaged` (relative paths) renamed to
    `*.corrupt` (sidecars `*.corrupt.sha256`), their bytes unchanged; nothing else differs."""
    expected = dict(before)
    for name in damaged:
        expected[name + ".corrupt"] = expected.pop(name)
        if name + ".sha256" in expected:
            expected[name + ".corrupt.sha256"] = expected.pop(name + ".sha256")
    assert sorted(after) == sorted(expected)
    for name, data in expected.items():
        assert after[name] == data, name


def _state(project, name="oracle.json"):
    return json.loads((project / name).read_text())


def _truncate(path, how):
    data = path.read_bytes()
    path.write_bytes(b"" if how == "empty" else data[: len(data) // 2])


def _one_warning(caplog):
    records = [r for r in caplog.records if r.name == STATE_LOGGER]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].levelno == logging.WARNING
    message = records[0].getMessage()
    assert "\n" not in message
    return message


def _controller_search(tmp_path, max_trials=7):
    """A finished toy search (update_every=3) whose controller was saved at 3 versions."""
    tuner = make_tuner(tmp_path, max_trials=max_trials, overwrite=True, update_every=3)
    tuner.search(verbose=0)
    return tmp_path / "toy"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Searches never damaged, by (kind, max_trials), each run once per module."""
    done = {}

    def get(kind, max_trials):
        if (kind, max_trials) not in done:
            directory = tmp_path_factory.mktemp(f"reference_{kind}")
            make = make_tuner if kind == "controller" else make_evolution_tuner
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*too few to move it off uniform")
                tuner = make(directory, max_trials=max_trials, overwrite=True)
                tuner.search(verbose=0)
            done[kind, max_trials] = tuner.oracle
        return done[kind, max_trials]

    return get


def _finish_and_compare(tmp_path, max_trials, reference):
    """Resumes the search to `max_trials`; checks it against a search never damaged."""
    tuner = make_tuner(tmp_path, max_trials=max_trials)
    tuner.search(verbose=0)
    oracle = tuner.oracle
    assert sorted(oracle.trials) == trial_ids(max_trials)
    assert all(t.status == COMPLETED for t in oracle.trials.values())
    rewarded = sorted(r[0] for r in oracle.rewards if r[2] == "trial")
    assert rewarded == trial_ids(max_trials)  # each trial rewarded exactly once
    expected = reference("controller", max_trials)
    for trial_id in trial_ids(max_trials):
        assert (
            oracle.trials[trial_id].hyperparameters.values
            == expected.trials[trial_id].hyperparameters.values
        )
    assert oracle.controller.get_state()["rng"] == expected.controller.get_state()["rng"]
    return tuner


# ------------------------------------------------------------------ ControllerOracle
def test_saved_files_carry_checksums_and_keep_the_previous_pair(tmp_path):
    project = _controller_search(tmp_path)
    current, prev = _state(project), _state(project, PREV_STATE_FILE)
    now = current["controller_oracle"]["controller_file"]
    before = prev["controller_oracle"]["controller_file"]
    assert now != before  # the previous state names the previous controller version
    npz = sorted(p.name for p in project.iterdir() if p.name.startswith("controller_"))
    assert npz == sorted([before, before + ".sha256", now, now + ".sha256"])
    for name in ("oracle.json", PREV_STATE_FILE, now, before, "trial_0/trial.json"):
        assert (project / (name + ".sha256")).exists(), name


def test_truncated_controller_file_falls_back_to_the_previous_pair(tmp_path, caplog, reference):
    project = _controller_search(tmp_path)
    damaged = _state(project)["controller_oracle"]["controller_file"]
    previous = _state(project, PREV_STATE_FILE)["controller_oracle"]
    _truncate(project / damaged, "half")
    before = _snapshot(tmp_path)

    with caplog.at_level(logging.WARNING):
        oracle = make_tuner(tmp_path, max_trials=9).oracle
    message = _one_warning(caplog)
    assert damaged in message and PREV_STATE_FILE in message
    _assert_only_set_aside(before, _snapshot(tmp_path), [f"toy/{damaged}"])
    assert oracle._controller_version == previous["controller_version"]
    assert oracle.pending_rewards == previous["pending"]
    _finish_and_compare(tmp_path, 9, reference)


@pytest.mark.parametrize("how", ["half", "empty"])
def test_damaged_oracle_json_falls_back_to_the_previous_state(tmp_path, caplog, reference, how):
    project = _controller_search(tmp_path)
    previous = _state(project, PREV_STATE_FILE)["controller_oracle"]
    _truncate(project / "oracle.json", how)
    before = _snapshot(tmp_path)

    with caplog.at_level(logging.WARNING):
        oracle = make_tuner(tmp_path, max_trials=9).oracle
    message = _one_warning(caplog)
    assert "oracle.json'" in message and PREV_STATE_FILE in message
    _assert_only_set_aside(before, _snapshot(tmp_path), ["toy/oracle.json"])
    assert oracle.trial_decisions == previous["trial_decisions"]
    _finish_and_compare(tmp_path, 9, reference)


def _saved_once(tmp_path):
    """A project whose state was saved once (one controller file, no previous state)."""
    tuner = make_tuner(tmp_path, max_trials=9, overwrite=True)
    hp = keras_tuner.HyperParameters()
    ToyHyperModel().build(hp)
    tuner.oracle.update_space(hp)
    tuner.oracle.sample_candidates(2)  # saves the oracle
    tuner.save()  # KerasTuner reloads a project only once the tuner file exists.
    project = tmp_path / "toy"
    assert not (project / PREV_STATE_FILE).exists()
    return project


@pytest.mark.parametrize("target", ["controller", "oracle.json"])
def test_damage_without_a_previous_state_is_a_one_line_error(tmp_path, target):
    project = _saved_once(tmp_path)
    name = _state(project)["controller_oracle"]["controller_file"]
    name = name if target == "controller" else "oracle.json"
    _truncate(project / name, "half")
    before = _snapshot(tmp_path)
    with pytest.raises(SearchStateError) as info:
        make_tuner(tmp_path, max_trials=9)
    message = str(info.value)
    assert isinstance(info.value, CorruptFileError) and isinstance(info.value, ValueError)
    assert "\n" not in message
    assert f"{name}'" in message and "overwrite=True" in message and "--overwrite" in message
    assert _snapshot(tmp_path) == before  # nothing renamed or deleted

    # The way out it names works.
    tuner = make_tuner(tmp_path, max_trials=3, overwrite=True)
    tuner.search(verbose=0)
    assert sorted(tuner.oracle.trials) == trial_ids(3)


def test_both_states_damaged_is_a_one_line_error_naming_both(tmp_path):
    project = _controller_search(tmp_path)
    _truncate(project / "oracle.json", "half")
    (project / PREV_STATE_FILE).write_text('{"ongoing')
    before = _snapshot(tmp_path)
    with pytest.raises(SearchStateError, match=r"oracle\.json'.*also damaged.*oracle\.prev"):
        make_tuner(tmp_path, max_trials=9)
    assert _snapshot(tmp_path) == before


def test_files_without_checksums_still_load(tmp_path, caplog, reference):
    project = _controller_search(tmp_path)
    saved = _state(project)["controller_oracle"]
    for sidecar in project.rglob("*.sha256"):
        sidecar.unlink()
    before = _snapshot(tmp_path)
    with caplog.at_level(logging.WARNING):
        oracle = make_tuner(tmp_path, max_trials=9).oracle
    assert not [r for r in caplog.records if r.name == STATE_LOGGER]
    assert _snapshot(tmp_path) == before
    assert oracle.pending_rewards == saved["pending"]
    assert oracle._controller_version == saved["controller_version"]
    _finish_and_compare(tmp_path, 9, reference)


def test_an_old_controller_file_without_checksum_truncated_is_named(tmp_path, caplog):
    # Before checksums, a cut `.npz` surfaced as a long zipfile.BadZipFile traceback.
    project = _controller_search(tmp_path)
    name = _state(project)["controller_oracle"]["controller_file"]
    (project / (name + ".sha256")).unlink()
    _truncate(project / name, "half")
    with caplog.at_level(logging.WARNING):
        make_tuner(tmp_path, max_trials=9)
    message = _one_warning(caplog)
    assert f"{name}' cannot be read as a controller file (BadZipFile" in message


def test_damaged_trial_file_is_set_aside_and_the_trial_run_again(tmp_path, caplog):
    project = _controller_search(tmp_path)
    values = make_tuner(tmp_path, max_trials=9).oracle.trials["2"].hyperparameters.values
    _truncate(project / "trial_2" / "trial.json", "half")
    before = _snapshot(tmp_path)
    with caplog.at_level(logging.WARNING):
        tuner = make_tuner(tmp_path, max_trials=9)
    message = _one_warning(caplog)
    assert "trial_2/trial.json'" in message and "trial 2 is run again" in message
    _assert_only_set_aside(before, _snapshot(tmp_path), ["toy/trial_2/trial.json"])
    rewards = list(tuner.oracle.rewards)
    tuner.search(verbose=0)
    assert tuner.calls[0] == "2"  # run again first, under its own id
    assert tuner.oracle.trials["2"].hyperparameters.values == values
    assert tuner.oracle.trials["2"].status == COMPLETED
    assert sorted(tuner.oracle.trials) == trial_ids(9)
    # Its reward had reached the controller already: not given twice.
    assert [r[0] for r in tuner.oracle.rewards].count("2") == 1
    assert tuner.oracle.rewards[: len(rewards)] == rewards


# ------------------------------------------------------------------- EvolutionOracle
def _evolution_search(tmp_path, max_trials=6):
    tuner = make_evolution_tuner(tmp_path, max_trials, overwrite=True)
    tuner.search(verbose=0)
    return tmp_path / "toy"


@pytest.mark.parametrize("how", ["half", "empty"])
def test_evolution_damaged_oracle_json_falls_back_and_finishes(tmp_path, caplog, reference, how):
    project = _evolution_search(tmp_path)
    _truncate(project / "oracle.json", how)
    before = _snapshot(tmp_path)
    with caplog.at_level(logging.WARNING):
        tuner = make_evolution_tuner(tmp_path, 9)
    message = _one_warning(caplog)
    assert "oracle.json'" in message and PREV_STATE_FILE in message
    _assert_only_set_aside(before, _snapshot(tmp_path), ["toy/oracle.json"])
    tuner.search(verbose=0)
    oracle = tuner.oracle
    assert sorted(oracle.trials) == trial_ids(9)
    assert sorted(h["id"] for h in oracle.history) == trial_ids(9)
    assert oracle.history == reference("evolution", 9).history


def test_evolution_damage_without_a_previous_state_is_a_one_line_error(tmp_path):
    tuner = make_evolution_tuner(tmp_path, 6, overwrite=True)
    hp = keras_tuner.HyperParameters()
    tuner.hypermodel.build(hp)
    tuner.oracle.update_space(hp)
    tuner.oracle.sample_candidates(1)
    tuner.save()
    project = tmp_path / "toy"
    assert not (project / PREV_STATE_FILE).exists()
    (project / "oracle.json").write_bytes(b"")
    before = _snapshot(tmp_path)
    with pytest.raises(SearchStateError) as info:
        make_evolution_tuner(tmp_path, 6)
    assert "\n" not in str(info.value) and "is empty" in str(info.value)
    assert "overwrite=True" in str(info.value)
    assert _snapshot(tmp_path) == before


def test_evolution_trial_file_that_cannot_be_recovered_is_a_one_line_error(tmp_path):
    # Population 4 of 8 trials: trial 0's member has died, so its values are nowhere else.
    tuner = make_evolution_tuner(tmp_path, 8, overwrite=True)
    tuner.search(verbose=0)
    assert "0" not in [m["id"] for m in tuner.oracle.population]
    path = tmp_path / "toy" / "trial_0" / "trial.json"
    path.write_text('{"trial_id": "0", "hyperp')
    before = _snapshot(tmp_path)
    with pytest.raises(SearchStateError) as info:
        make_evolution_tuner(tmp_path, 8)
    message = str(info.value)
    assert "\n" not in message and "trial_0/trial.json'" in message
    assert "does not record trial 0's hyperparameters" in message
    assert _snapshot(tmp_path) == before


def test_evolution_running_trial_file_damaged_is_run_again(tmp_path, caplog, reference):
    first = make_evolution_tuner(tmp_path, 9, overwrite=True, interrupt_at="5")
    with pytest.raises(KeyboardInterrupt):
        first.search(verbose=0)
    values = first.oracle.trials["5"].hyperparameters.values
    _truncate(tmp_path / "toy" / "trial_5" / "trial.json", "half")
    with caplog.at_level(logging.WARNING):
        second = make_evolution_tuner(tmp_path, 9)
    assert "trial 5 is run again" in _one_warning(caplog)
    second.search(verbose=0)
    assert second.calls[0] == "5"
    assert second.oracle.trials["5"].hyperparameters.values == values
    assert second.oracle.history == reference("evolution", 9).history


def test_no_stray_files_after_a_search(tmp_path):
    project = _evolution_search(tmp_path)
    names = sorted(p.name for p in project.iterdir() if p.is_file())
    assert [n for n in names if n.startswith(".")] == []
    for name in names:
        if name.endswith(".sha256"):
            assert name[: -len(".sha256")] in names  # no sidecar without its file
    assert os.path.exists(project / (PREV_STATE_FILE + ".sha256"))
