"""Weight-sharing scores that can be trusted: statistics, common batches, cost, final pick."""

import hashlib
import json

import keras
import numpy as np
import pytest

from tuners import FinalSelection, NASNetTuner, SharedWeights
from tuners.final_selection import FILE_NAME
from tuners.weight_sharing import STATISTICS, weights_digest

# The tiny searches give the controller too few updates on purpose (cost); its warning about
# that is tests/test_nas_tuner.py's.
pytestmark = pytest.mark.filterwarnings("ignore:.*too few to move it off uniform")
OPS = ("identity", "sep_conv_3x3", "max_pool_3x3")
CHILD = dict(num_blocks=1, ops=OPS, num_cells=1, penultimate_filters=48, input_shape=(8, 8, 3),
             classes=3)


def _data(n=96, n_val=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n + n_val, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, n + n_val)
    return x[:n], y[:n], x[n:], y[n:]


def _batch_ids(batches):
    return [hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()[:12]
            for x, _, _ in batches]


class Recording(SharedWeights):
    """Records what each scoring saw, and the weights after training and after each trial."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen, self.trained, self.after = [], [], []

    def _score(self, genotype, batches, recalibration=None):
        self.seen.append((self.epochs_done, _batch_ids(batches)))
        return super()._score(genotype, batches, recalibration)

    def _train_shared(self, *args):
        super()._train_shared(*args)
        self.trained.append(weights_digest(self.supernet))

    def estimate(self, child, *args, **kwargs):
        logs = super().estimate(child, *args, **kwargs)
        self.after.append(weights_digest(self.supernet))
        return logs


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A 3-epoch shared search (controller), candidates on 2 of 4 validation batches."""
    x, y, vx, vy = _data()
    estimator = Recording(candidates_per_trial=3, validation_batches=2, seed=1,
                          statistics="recalibrate", recalibration_batches=2)
    tuner = NASNetTuner(**CHILD, max_trials=3, seed=5, estimator=estimator,
                        oracle_kwargs={"units": 16}, final_selection=None,
                        directory=tmp_path_factory.mktemp("shared"), overwrite=True)
    tuner.search(x, y, validation_data=(vx, vy), batch_size=4, steps_per_epoch=4, verbose=0)
    return tuner, (x, y, vx, vy)


def test_scoring_leaves_the_shared_weights_and_statistics_unchanged(searched):
    tuner, (x, y, vx, vy) = searched
    estimator = tuner.estimator
    # In the search: scoring the candidates and the trial's architecture after an epoch's
    # training changed nothing (the moving statistics included).
    assert len(estimator.trained) == 3 and estimator.after == estimator.trained
    net = estimator.supernet
    before = [np.array(keras.ops.convert_to_numpy(v)) for v in net.weights]
    assert net.non_trainable_weights  # the moving statistics are among the weights compared
    genotypes = tuner.get_best_genotypes(2)
    scores = {}
    for mode in STATISTICS:
        estimator.statistics = mode
        scores[mode] = estimator.score_architectures(genotypes, (vx, vy), batch_size=4,
                                                     recalibration_data=(x, y))
        for a, v in zip(before, net.weights):
            np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(v), err_msg=mode)
    # The three treatments of batch normalization are really different scorings.
    losses = {mode: round(s[0]["val_loss"], 6) for mode, s in scores.items()}
    assert len(set(losses.values())) == 3, losses
    estimator.statistics = "recalibrate"


def test_candidates_of_an_epoch_share_their_validation_batches(searched):
    tuner, _ = searched
    estimator = tuner.estimator
    all_batches = max(len(ids) for _, ids in estimator.seen)
    by_epoch = {}
    for epoch, ids in estimator.seen:
        if len(ids) < all_batches:  # candidates; the trial's own score reads them all
            by_epoch.setdefault(epoch, []).append(tuple(ids))
    assert sorted(by_epoch) == [1, 2, 3]
    for epoch, lists in by_epoch.items():
        assert len(lists) == 3 and len(set(lists)) == 1, (epoch, lists)
        assert len(lists[0]) == 2
    # Drawn afresh each epoch, and recorded with the trial's progress.
    assert len({lists[0] for lists in by_epoch.values()}) > 1
    recorded = [p["validation_batches"] for p in estimator.progress.values()]
    assert all(len(r) == 2 for r in recorded)


def _writes(tmp_path, steps, supernet):
    x, y, vx, vy = _data()
    tuner = NASNetTuner(**CHILD, max_trials=3, seed=5,
                        estimator=SharedWeights(candidates_per_trial=2, seed=1,
                                                supernet=supernet),
                        oracle_kwargs={"units": 16}, final_selection=None,
                        directory=tmp_path / str(steps), overwrite=True)
    oracle, count = tuner.oracle, [0]
    write = oracle._write_oracle_state

    def counted(state):
        count[0] += 1
        return write(state)

    oracle._write_oracle_state = counted
    tuner.search(x, y, validation_data=(vx, vy), batch_size=4, steps_per_epoch=steps,
                 verbose=0)
    assert tuner.estimator.epochs_done == 3
    return count[0]


def test_oracle_state_is_written_per_epoch_not_per_step(tmp_path, searched):
    # 4 and 16 minibatches per epoch: the same number of state writes (KerasTuner's own at
    # the trial's start, report and end, and ours: the epoch's training architectures drawn
    # in one call, the candidates, their rewards).
    supernet = searched[0].estimator.supernet
    few, many = _writes(tmp_path, 4, supernet), _writes(tmp_path, 16, supernet)
    assert few == many, (few, many)
    assert few <= 7 * 3


class Interrupted(Exception):
    pass


class Selection(FinalSelection):
    def __init__(self, fail_after=None, **kwargs):
        super().__init__(**kwargs)
        self.fail_after, self.trained = fail_after, []

    def _train_standalone(self, tuner, values, rank, epochs, fit_args, fit_kwargs):
        if self.fail_after is not None and len(self.trained) == self.fail_after:
            raise Interrupted()  # a kill at this point: what is on disk is what remains
        self.trained.append((rank, json.dumps(values, sort_keys=True), epochs))
        return super()._train_standalone(tuner, values, rank, epochs, fit_args, fit_kwargs)


# The selection's bookkeeping is the backends' same; under JAX its six standalone children
# compile one by one (90 s). The CLI's super-network searches run a final selection there.
@pytest.mark.tf_only
def test_final_selection_ranks_trains_and_resumes_inside(tmp_path, searched):
    x, y, vx, vy = _data()
    supernet = searched[0].estimator.supernet
    # Successive halving: 4 finalists trained 1 epoch, the best 2 of them again for 2.
    settings = dict(num_samples=4, top_k=2, num_standalone=4, standalone_epochs=2, halving=2)
    assert Selection(**settings).rungs() == [(4, 1), (2, 2)]

    def make(selection, overwrite):
        return NASNetTuner(**CHILD, max_trials=2, seed=5,
                           estimator=SharedWeights(candidates_per_trial=2, seed=1,
                                                   supernet=supernet),
                           oracle_kwargs={"units": 16}, final_selection=selection,
                           directory=tmp_path, overwrite=overwrite)

    fit = dict(validation_data=(vx, vy), batch_size=4, steps_per_epoch=4, verbose=0)
    first = Selection(fail_after=5, **settings)  # killed inside the second rung
    with pytest.raises(Interrupted):
        make(first, True).search(x, y, **fit)
    # The first rung: the 4 best by weight-sharing estimate, in that order, for 1 epoch.
    assert [(rank, epochs) for rank, _, epochs in first.trained[:4]] == [
        (0, 1), (1, 1), (2, 1), (3, 1)]
    state = json.loads((tmp_path / "untitled_project" / FILE_NAME).read_text())
    assert len(state["standalone"]) == 4 and "ranking" not in state
    key = {int(i): json.dumps(state["proposals"][int(i)], sort_keys=True)
           for i in state["standalone"]}
    one_epoch = {key[int(i)]: s["1"] for i, s in state["standalone"].items()}
    rank = {k: r for r, k, _ in first.trained[:4]}
    order = sorted(one_epoch, key=lambda k: (-one_epoch[k], rank[k]))
    assert first.trained[4][1:] == (order[0], 2)  # the best of the first rung goes on first

    second = Selection(**settings)
    tuner = make(second, False)
    tuner.search(x, y, **fit)
    # Finished trainings were not redone: only the second rung's other finalist trains.
    assert [t[1:] for t in second.trained] == [(order[1], 2)]
    # The shared weights came back from disk (a tuner handed a compiled super-network
    # resumes the weights it saved, not the network's current ones).
    assert tuner.estimator.epochs_done == 2
    ranking = tuner.final_ranking
    assert [r["standalone_epochs"] for r in ranking[:5]] == [2, 2, 1, 1, None]
    assert ranking[0]["standalone_val_accuracy"] >= ranking[1]["standalone_val_accuracy"]
    assert ranking[2]["standalone_val_accuracy"] >= ranking[3]["standalone_val_accuracy"]
    assert {ranking[0]["standalone_scores"]["1"], ranking[1]["standalone_scores"]["1"]} == {
        one_epoch[order[0]], one_epoch[order[1]]}
    assert ranking[0]["standalone_val_accuracy"] == ranking[0]["standalone_scores"]["2"]
    assert ranking[0]["estimate_kind"].startswith("weight-sharing")
    # Proposals: the final policy's samples plus the best trials and candidates, once each.
    assert 4 < len(ranking) <= 4 + 2 + 2
    assert len({json.dumps(r["values"], sort_keys=True) for r in ranking}) == len(ranking)
    best = tuner.get_best_genotypes(1)[0]
    assert best == tuner.hypermodel.decode(ranking[0]["values"])
    assert tuner.estimator.best_architectures(1)[0][0] == ranking[0]["values"]


def test_estimators_trace_their_functions_once(tmp_path, monkeypatch):
    # Every trace of a train or predict function runs `SuperNet.call` in Python once (both
    # backends); eager calls do not happen in the estimators' loops. Five architectures,
    # validation data that ends in a padded batch, fresh and shared weights, all three
    # treatments of batch normalization: each compiled function is traced once.
    from nasnet_tf.supernet import SuperNet
    from tuners import FreshWeights, NASNetHyperModel
    from tuners.estimation import Child

    traces = []
    original = SuperNet.call

    def counted(self, inputs, training=None, mask=None, **kwargs):
        traces.append((bool(training), self._batch_statistics))
        return original(self, inputs, training=training, mask=mask, **kwargs)

    monkeypatch.setattr(SuperNet, "call", counted)
    x, y, vx, vy = _data(n=40, n_val=10)  # batches of 8: the last validation batch is padded
    hypermodel = NASNetHyperModel(**CHILD)
    fresh = FreshWeights(seed=0)
    genotypes = [hypermodel.decode(v["values"]) for v in SharedWeights(seed=3)._uniform(
        Child(None, None, None, "0", str(tmp_path), hypermodel=hypermodel), 5)]
    for i, genotype in enumerate(genotypes):
        fresh.estimate(Child(genotype, None, None, str(i), str(tmp_path), hypermodel=hypermodel),
                       x, y, validation_data=(vx, vy), epochs=1, batch_size=8)
    after_fresh = len(traces)
    assert after_fresh <= 3, traces  # built once, one train and one predict function
    shared = SharedWeights(candidates_per_trial=2, validation_batches=1, seed=0,
                           supernet=fresh.supernet, optimizer="adam")
    tuner = NASNetTuner(hypermodel, max_trials=2, seed=1, estimator=shared,
                        oracle_kwargs={"units": 8}, final_selection=None,
                        directory=tmp_path, overwrite=True)
    tuner.search(x, y, validation_data=(vx, vy), batch_size=8, verbose=0)
    assert len(traces) - after_fresh <= 1, traces  # + the batch-statistics predict function
    for mode in STATISTICS:
        shared.statistics = mode
        shared.score_architectures(genotypes, (vx, vy), batch_size=8, recalibration_data=(x, y))
    assert len(traces) - after_fresh <= 1, traces


class Killed(BaseException):
    """Stops a search as a kill would: KerasTuner records an `Exception` in a trial as its
    failure and goes on, but lets this through."""


class _KillAt(SharedWeights):
    """Raises (as a SIGKILL would stop it) before the `boundary`-th file write of the save that
    follows the second epoch's training."""

    boundary = None

    def _save(self, weights_changed=True):
        if not (weights_changed and self.epochs_done == 2 and self.boundary is not None):
            return super()._save(weights_changed)
        import tuners.weight_sharing as module

        calls, originals = [0], (module.atomic_write, module.atomic_save)

        def counted(original):
            def write(*args, **kwargs):
                if calls[0] == self.boundary:
                    raise Killed()
                calls[0] += 1
                return original(*args, **kwargs)

            return write

        module.atomic_write, module.atomic_save = counted(originals[0]), counted(originals[1])
        try:
            return super()._save(weights_changed)
        finally:
            module.atomic_write, module.atomic_save = originals


@pytest.mark.tf_only  # the file handling is the backends' same; one run of it is enough
@pytest.mark.parametrize("boundary", [0, 1, 2, 3, 4])
def test_shared_state_survives_a_kill_at_each_write(tmp_path, searched, boundary):
    # The writes of one save: weights, optimizer, the previous state, the state (4: after all).
    x, y, vx, vy = _data()
    supernet = searched[0].estimator.supernet

    def make(max_trials, estimator):
        return NASNetTuner(**CHILD, max_trials=max_trials, seed=5, estimator=estimator,
                           oracle_kwargs={"units": 16}, final_selection=None,
                           directory=tmp_path, overwrite=max_trials == 1)

    fit = dict(validation_data=(vx, vy), batch_size=4, steps_per_epoch=4, verbose=0)
    make(1, SharedWeights(candidates_per_trial=2, seed=1, supernet=supernet)).search(x, y, **fit)
    killed = _KillAt(candidates_per_trial=2, seed=1, supernet=supernet)
    killed.boundary = boundary
    if boundary < 4:
        with pytest.raises(Killed):
            make(2, killed).search(x, y, **fit)
    else:
        make(2, killed).search(x, y, **fit)
    project = tmp_path / "untitled_project"
    # What a kill inside a write leaves: a private temporary file.
    stale = project / ".tmp-k1ll3d-shared_weights_000099.weights.h5"
    stale.write_bytes(b"half")
    stale.chmod(0o600)
    state = json.loads((project / "shared_state.json").read_text())
    resumed = SharedWeights(candidates_per_trial=2, seed=1, supernet=supernet)
    tuner = make(3, resumed)
    resumed.prepare(tuner.hypermodel)  # restores; never refuses
    assert resumed.epochs_done in (1, 2)
    assert resumed.epochs_done == state["epochs_done"] or boundary < 4
    recorded = [json.loads((project / name).read_text())
                for name in ("shared_state.json", "shared_state.prev.json")
                if (project / name).exists()]
    assert weights_digest(supernet) in [r["values_sha256"] for r in recorded]
    tuner.search(x, y, **fit)  # and goes on to the end
    assert resumed.epochs_done == 3
    # No temporary file of the interrupted write is left, none private.
    leftovers = [p.name for p in project.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []
    for p in project.glob("shared_*"):
        assert p.stat().st_mode & 0o044 == 0o044, p.name


@pytest.mark.parametrize("kwargs, match", [
    ({"halving": 1}, "`halving` must be an integer >= 2 or None. Received: halving=1"),
    ({"halving": 2.5}, "halving=2.5"),
    ({"halving": True}, "halving=True"),
    ({"num_standalone": -1}, "num_standalone=-1"),
])
def test_final_selection_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FinalSelection(**kwargs)


@pytest.mark.parametrize("settings, rungs", [
    (dict(num_standalone=9, standalone_epochs=3, halving=3), [(9, 1), (3, 3)]),
    (dict(num_standalone=27, standalone_epochs=9, halving=3), [(27, 1), (9, 3), (3, 9)]),
    (dict(num_standalone=4, standalone_epochs=1, halving=3), [(4, 1), (2, 1)]),
    (dict(num_standalone=2, standalone_epochs=3, halving=3), [(2, 3)]),
    (dict(num_standalone=1, standalone_epochs=3, halving=2), [(1, 3)]),
    (dict(num_standalone=0, standalone_epochs=3, halving=2), [(0, 3)]),
    (dict(num_standalone=9, standalone_epochs=3, halving=None), [(9, 3)]),
])
def test_final_selection_rungs(settings, rungs):
    assert FinalSelection(**settings).rungs() == rungs


@pytest.mark.tf_only  # the file handling is the backends' same
@pytest.mark.parametrize("check", ["settings", "shapes"])
def test_a_state_saved_with_another_optimizer_is_refused_before_anything_loads(
        tmp_path, searched, monkeypatch, check):
    # RMSprop's state has the shapes of momentum SGD's (one slot each): told by the settings
    # the state records. Adam's has another shape: told by the arrays too (the settings check
    # switched off here).
    import tuners.weight_sharing as module

    if check == "shapes":
        monkeypatch.setattr(module, "_optimizer_key", lambda net: {})
    x, y, vx, vy = _data()
    supernet = searched[0].estimator.supernet
    fit = dict(validation_data=(vx, vy), batch_size=4, steps_per_epoch=4, verbose=0)
    other = keras.optimizers.RMSprop(1e-3) if check == "settings" else "adam"
    NASNetTuner(**CHILD, max_trials=1, seed=5, oracle_kwargs={"units": 16},
                estimator=SharedWeights(candidates_per_trial=2, seed=1, supernet=supernet,
                                        optimizer=other),
                final_selection=None, directory=tmp_path, overwrite=True).search(x, y, **fit)
    saved = json.loads((tmp_path / "untitled_project" / "shared_state.json").read_text())
    resumed = SharedWeights(candidates_per_trial=2, seed=1, supernet=supernet)  # SGD
    tuner = NASNetTuner(**CHILD, max_trials=2, seed=5, oracle_kwargs={"units": 16},
                        estimator=resumed, final_selection=None, directory=tmp_path)
    # Adam over the flat vector: 7 arrays (4 of Adam, 3 of the wrapper); momentum SGD: 6.
    message = "saved with {'class': 'RMSprop'" if check == "settings" else "(7 arrays;"
    with pytest.raises(ValueError, match="state of another optimizer") as raised:
        resumed.prepare(tuner.hypermodel)
    assert message in str(raised.value), str(raised.value)
    # The weights were not loaded either: the state is restored whole or not at all.
    assert weights_digest(supernet) != saved["values_sha256"]
