"""A kill at every write boundary of every state file: the rerun resumes or falls back, never
refuses (issue 19).

Each test runs the real writer once under `_boundaries.Boundaries`, which copies the run's
directory just before every rename and removal under it (the instants between which its state
is constant; temporary files cut in half, as a kill mid-write leaves them), then reruns from
each copy in turn and checks that the rerun finishes, with the results an uninterrupted run
has, and leaves no temporary file and no file that others cannot read. The state files:
- the oracles' (`oracle.json`, `oracle.prev.json`, the controller's weights, `trial.json`, each
  with its `.sha256` sidecar), for `ControllerOracle` and `EvolutionOracle`;
- the weight-sharing state unit (`shared_weights_*.weights.h5`, `shared_optimizer_*.npz`,
  `shared_state.json`, `shared_state.prev.json`);
- training's checkpoints (`checkpoints/`, `state.json`, the history and the final model).

Under TensorFlow only: the writers are backend-neutral Python, and each copy's rerun costs a
backend's start-up of the models involved.
"""

import os
import shutil

import keras_tuner
import numpy as np
import pytest
from _boundaries import Boundaries, problems_left
from _evolution_toy import make_tuner as make_evolution_tuner
from _evolution_toy import toy_score as evolution_score
from _oracle_toy import make_tuner as make_controller_tuner
from _oracle_toy import quiet_small_budgets, trial_ids  # noqa: F401
from _oracle_toy import toy_score as controller_score

pytestmark = [pytest.mark.tf_only,
              pytest.mark.filterwarnings("ignore:.*too few to move it off uniform")]

COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED


def _rerun(snapshot, tmp_path, name):
    target = tmp_path / "reruns" / name
    shutil.copytree(snapshot, target)
    return target


# -- the oracles ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make, score", [(make_evolution_tuner, evolution_score),
                                         (make_controller_tuner, controller_score)],
                         ids=["evolution", "controller"])
def test_a_search_killed_at_any_write_resumes_and_runs_every_trial(tmp_path, make, score):
    max_trials = 3
    run = tmp_path / "run"
    with Boundaries(run, tmp_path / "snapshots") as boundaries:
        make(run, max_trials=max_trials).search(verbose=0)
    # Every trial writes trial.json, oracle.json (and the controller its weights) with sidecars.
    assert boundaries.calls >= 12 * max_trials
    assert len(boundaries.snapshots) >= 10 * max_trials

    for i, (snapshot, what) in enumerate(boundaries.snapshots):
        directory = _rerun(snapshot, tmp_path, f"{i:04d}")
        try:
            tuner = make(directory, max_trials=max_trials)
            tuner.search(verbose=0)
        except Exception as e:  # pragma: no cover - the failure message is the point
            pytest.fail(f"killed {what}: the rerun failed: {type(e).__name__}: {e}")
        trials = tuner.oracle.trials
        assert sorted(trials) == trial_ids(max_trials), what
        for trial in trials.values():
            assert trial.status == COMPLETED, what
            assert trial.score == score(trial.hyperparameters.values), what
        assert problems_left(directory) == [], what


# -- the weight-sharing state unit ----------------------------------------------------------------
def test_a_shared_search_killed_at_any_write_of_its_state_resumes(tmp_path):


    from tuners import NASNetTuner
    from tuners.weight_sharing import SharedWeights, weights_digest

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 40)
    child = dict(num_blocks=1, ops=("identity", "sep_conv_3x3", "max_pool_3x3"), num_cells=1,
                 penultimate_filters=48, input_shape=(8, 8, 3), classes=3)

    def search(directory, max_trials, supernet=None):
        # The reruns reuse the first run's super-network object (its weights are reloaded from
        # the state unit): the same graph, without compiling it again for every copy.
        estimator = SharedWeights(candidates_per_trial=2, seed=1, supernet=supernet)
        tuner = NASNetTuner(**child, max_trials=max_trials, seed=5, estimator=estimator,
                            oracle_kwargs={"units": 16}, final_selection=None,
                            directory=str(directory), project_name="shared")
        tuner.search(x[:32], y[:32], validation_data=(x[32:], y[32:]), batch_size=8,
                     verbose=0)
        return tuner, estimator

    run = tmp_path / "run"
    _, first = search(run, 1)
    # Trial 1's writes: the shared state unit's and the oracle's (the two are written one after
    # the other, each whole: a kill between them must not change what the search does).
    state = ("shared_weights_", "shared_optimizer_", "shared_state", "oracle", "controller_")
    with Boundaries(run, tmp_path / "snapshots",
                    only=lambda name: any(s in name for s in state)) as boundaries:
        tuner, resumed = search(run, 2, first.supernet)
    expected = weights_digest(resumed.supernet)
    expected_controller = _controller_arrays(tuner.oracle)
    assert boundaries.calls >= 12
    assert len(boundaries.snapshots) >= 10

    for i, (snapshot, what) in enumerate(boundaries.snapshots):
        directory = _rerun(snapshot, tmp_path, f"{i:04d}")
        try:
            tuner, estimator = search(directory, 2, first.supernet)
        except Exception as e:  # pragma: no cover - the failure message is the point
            pytest.fail(f"killed {what}: the rerun failed: {type(e).__name__}: {e}")
        trials = tuner.oracle.trials
        assert sorted(trials) == ["0", "1"], what
        assert all(t.status == COMPLETED for t in trials.values()), what
        # What the rerun leaves on disk restores (a finished search's rerun trains nothing
        # and loads nothing, so the unit is read back here as the next run would) and is what
        # the uninterrupted search ended with: the same shared weights, the same controller.
        again = SharedWeights(supernet=first.supernet)  # loads into the same object
        again.reload(str(directory / "shared"))
        again._maybe_restore(None)
        assert again.epochs_done == 2, what
        assert weights_digest(again.supernet) == expected, what
        controller = _controller_arrays(tuner.oracle)
        assert len(controller) == len(expected_controller), what
        assert all(np.array_equal(a, b) for a, b in zip(controller, expected_controller)), what
        assert problems_left(directory) == [], what


def _controller_arrays(oracle):
    oracle._ensure_controller()
    return [np.asarray(v) for v in oracle.controller.get_state()["weights"]]


# -- training's checkpoints -----------------------------------------------------------------------
def test_training_killed_at_any_write_resumes_and_ends_as_an_uninterrupted_run(tmp_path):
    # Every state a kill inside the second epoch can leave (a SIGKILL mid-step leaves the one
    # after the last write), resumed to the uninterrupted run's weights bit for bit. A real
    # SIGKILL of training processes is tests/test_multihost.py's kill-and-resume test.
    import keras

    from nasnet_tf import Block, CellGenotype, Genotype
    from nasnet_tf.data import load_dataset
    from nasnet_tf.io_utils import verify
    from nasnet_tf.training import TrainConfig, train

    # A one-block cell: the writes are the same as NASNet-A's, each rerun builds a smaller
    # model (this test: 71 -> 32 s).
    cell = CellGenotype([Block(0, 1, "sep_conv_3x3", "identity")])
    genotype = Genotype(cell, cell)
    digits = load_dataset("digits", batch_size=16, seed=0)
    config = TrainConfig(epochs=2, batch_size=16, steps_per_epoch=2, jit_compile=False,
                         verbose=0, run_eagerly=True, tensorboard=False,
                         model_kwargs=dict(num_cells=1, penultimate_filters=24,
                                           auxiliary_head=False, drop_path_keep_prob=1.0))
    class SecondEpoch(keras.callbacks.Callback):
        """Records the second epoch's writes and the final ones (the first epoch's are the
        same kinds): every rerun costs a training."""

        def on_epoch_begin(self, epoch, logs=None):
            boundaries.active = epoch >= 1

    run = tmp_path / "run"
    with Boundaries(run, tmp_path / "snapshots") as boundaries:
        boundaries.active = False
        train(genotype, digits, config, run, callbacks=[SecondEpoch()])
    final = [p for p in os.listdir(run) if p.endswith(".keras")]
    assert final, os.listdir(run)
    expected = keras.saving.load_model(run / final[0], compile=False).get_weights()
    assert len(boundaries.snapshots) >= 6

    for i, (snapshot, what) in enumerate(boundaries.snapshots):
        directory = _rerun(snapshot, tmp_path, f"{i:04d}")
        try:
            train(genotype, digits, config, directory)
        except Exception as e:  # pragma: no cover - the failure message is the point
            pytest.fail(f"killed {what}: the rerun failed: {type(e).__name__}: {e}")
        assert verify(directory / final[0]), what
        weights = keras.saving.load_model(directory / final[0], compile=False).get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(weights, expected)), what
        assert problems_left(directory) == [], what
