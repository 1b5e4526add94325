"""The RNN controller: an autoregressive LSTM policy trained by PPO or REINFORCE.

The controller of Zoph & Le (2016) and Zoph et al. (NASNet, 2017): a one-layer LSTM emits one
categorical decision after another; each decision is fed back, through an embedding, as the
input of the next step, so every choice is conditioned on the ones before it. Each decision has
its own softmax head sized to its number of choices. Rewards (e.g. child validation accuracies)
train it by policy gradient against an exponential-moving-average baseline.

Only `keras`, `keras.ops` and `keras.layers` are used, so it runs under the TensorFlow and the
JAX backends. The random draws come from a NumPy generator whose state is part of
`get_state()`, so a restored controller samples exactly what the saved one would have.

Its training settings come from a named preset of `PRESETS` (explicit arguments override it):
`"nasnet"` is the papers' (Adam 3.5e-4, entropy 1e-5, EMA baseline 0.95, batches of 20),
which needs about a thousand rewards to move off uniform over the NASNet space;
`"default"` is tuned to learn within tens to hundreds of rewards (see
`benchmarks/controller_sweep.py` and `benchmarks/RESULTS_controller.md`).
"""

import contextlib
import logging
import math
import threading
import weakref

import keras
import numpy as np
from keras import ops

from nasnet_tf import validators

logger = logging.getLogger(__name__)

ALGORITHMS = ("ppo", "reinforce")

PRESETS = {
    # Zoph et al. 2017 (NASNet): PPO, Adam 3.5e-4, entropy 1e-5, EMA baseline 0.95, 20
    # children per update. No logit bounding, no advantage scaling, no KL stop.
    "nasnet": {
        "algorithm": "ppo",
        "learning_rate": 3.5e-4,
        "entropy_weight": 1e-5,
        "baseline_decay": 0.95,
        "clip_epsilon": 0.2,
        "ppo_epochs": 4,
        "normalize_advantages": False,
        "logit_clip": 0.0,
        "temperature": 1.0,
        "max_kl": 0.0,
        "update_every": 20,
    },
    # Tuned on synthetic rewards over the NASNet B=5 space for budgets of 100 to 500 rewards
    # (benchmarks/controller_sweep.py). `update_every=None`: derived from the trial budget.
    "default": {
        "algorithm": "ppo",
        "learning_rate": 1e-2,
        "entropy_weight": 1e-2,
        "baseline_decay": 0.9,
        "clip_epsilon": 0.2,
        "ppo_epochs": 4,
        "normalize_advantages": True,
        "logit_clip": 2.5,
        "temperature": 1.0,
        "max_kl": 0.05,
        "update_every": None,
    },
}
"""Named training settings for `Controller` and `ControllerOracle`, one dict per preset.

`update_every` is used by `ControllerOracle` only (`None`: derived from `max_trials`)."""

CONTROLLER_SETTINGS = (
    "algorithm",
    "learning_rate",
    "entropy_weight",
    "baseline_decay",
    "clip_epsilon",
    "ppo_epochs",
    "normalize_advantages",
    "logit_clip",
    "temperature",
    "max_kl",
)
_MASKED = -1e9  # Logit of a choice a decision does not have (finite: 0 * it stays 0).
_INIT_RANGE = 0.1  # NASNet / NAS 2016: every controller weight uniform in [-0.1, 0.1].
_MAX_BATCH = 1024  # rows per compiled policy call; longer inputs run in chunks


def _batch_bucket(n):
    """The padded batch size for `n` rows: 1, then powers of two from 8 up to `_MAX_BATCH`
    (a handful of compiled shapes whatever the callers ask for)."""
    if n <= 1:
        return 1
    return min(_MAX_BATCH, max(8, 1 << (int(n) - 1).bit_length()))


class _Policy(keras.Model):
    """The LSTM policy network; its `call` returns the per-sequence training loss.

    `call` takes `{"decisions", "old_log_prob", "advantage"}` and returns one loss per
    sequence, so `train_on_batch` (with a loss that returns `y_pred`) does the gradient step
    the same way under every backend.

    The decisions run as one `keras.ops.scan` rather than an unrolled Python loop, so the
    compiled graph (and JAX's compile time) does not grow with the number of decisions. For
    that, the softmax heads are stacked into one `[D, units, K]` kernel (K = the largest
    number of choices) and the logits beyond a decision's own choices are masked out.

    The logits are divided by `temperature`, then bounded to `logit_clip * tanh(logits)` when
    `logit_clip > 0` (ENAS): no choice can become more than `exp(2 * logit_clip)` times as
    likely as another, so a few lucky rewards cannot collapse a decision.
    """

    def __init__(
        self,
        num_choices,
        units,
        embedding_dim,
        clip_epsilon,
        entropy_weight,
        logit_clip=0.0,
        temperature=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_choices = list(num_choices)
        self.units = units
        self.clip_epsilon = clip_epsilon
        self.entropy_weight = entropy_weight
        self.logit_clip = float(logit_clip)
        self.temperature = float(temperature)
        num_decisions = len(self.num_choices)
        max_choices = max(self.num_choices)
        # One embedding row per (decision, choice) pair plus a learned start token, so the
        # same index means the same thing to the LSTM wherever it appears.
        self._offsets = np.cumsum([0] + self.num_choices[:-1]).astype("int32")
        self.start_index = int(sum(self.num_choices))
        self._mask = np.where(
            np.arange(max_choices)[None, :] < np.asarray(self.num_choices)[:, None], 0.0, _MASKED
        ).astype("float32")
        self.embedding = keras.layers.Embedding(self.start_index + 1, embedding_dim, name="embed")
        self.cell = keras.layers.LSTMCell(units, name="lstm")
        self.embedding.build((None,))
        self.cell.build((None, embedding_dim))
        self.head_kernel = self.add_weight(
            shape=(num_decisions, units, max_choices), initializer="zeros", name="head_kernel"
        )
        self.head_bias = self.add_weight(
            shape=(num_decisions, max_choices), initializer="zeros", name="head_bias"
        )
        self.built = True

    def run(self, decisions=None, uniforms=None):
        """Runs the policy over all decisions.

        With `decisions` (`[n, D]` ints) it is teacher-forced; with `uniforms` (`[n, D]` in
        [0, 1)) each decision is drawn by inverse CDF and fed back; with neither, the most
        likely choice is taken at each step (one sequence). Returns the decisions, and their
        per-decision log-probabilities and entropies, each `[n, D]`; greedy decoding also
        returns the probability vector of every decision, `[1, D, K]`.
        """
        mode = (
            "teacher" if decisions is not None else "sample" if uniforms is not None else "greedy"
        )
        if mode == "teacher":
            column = ops.convert_to_tensor(decisions, "int32")
        elif mode == "sample":
            column = ops.convert_to_tensor(uniforms, "float32")
        else:
            column = ops.zeros((1, len(self.num_choices)), dtype="float32")
        column = ops.transpose(column)
        batch_size = ops.shape(column)[1]
        zeros = ops.zeros((batch_size, self.units), dtype="float32")
        start = ops.full((batch_size,), self.start_index, dtype="int32")
        xs = (
            ops.convert_to_tensor(self.head_kernel),
            ops.convert_to_tensor(self.head_bias),
            ops.convert_to_tensor(self._mask),
            ops.convert_to_tensor(self._offsets),
            ops.convert_to_tensor(np.asarray(self.num_choices, "int32")),
            column,
        )

        def step(carry, x):
            h, c, index = carry[:3]
            kernel, bias, mask, offset, n_choices, col = x
            out, (h, c) = self.cell(self.embedding(index), [h, c])
            logits = ops.matmul(out, kernel) + bias
            if self.temperature != 1.0:
                logits = logits / self.temperature
            if self.logit_clip > 0:
                logits = self.logit_clip * ops.tanh(logits)
            logits = logits + mask
            log_p = ops.log_softmax(logits, axis=-1)
            probs = ops.exp(log_p)
            if mode == "sample":
                cdf = ops.cumsum(probs, axis=-1)
                below = ops.cast(ops.greater_equal(col[:, None], cdf), "int32")
                chosen = ops.minimum(ops.sum(below, axis=-1), n_choices - 1)
            elif mode == "greedy":
                chosen = ops.cast(ops.argmax(logits, axis=-1), "int32")
            else:
                chosen = col
            log_prob = ops.take_along_axis(log_p, chosen[:, None], axis=1)[:, 0]
            entropy = -ops.sum(probs * log_p, axis=-1)
            carry = (h, c, chosen + offset, chosen, log_prob, entropy)
            if mode == "greedy":
                carry = carry + (probs,)
            # Keras' TensorFlow `scan` needs the per-step outputs shaped like the carry.
            return carry, carry

        empty = ops.zeros((batch_size,), dtype="float32")
        init = (zeros, zeros, start, start, empty, empty)
        if mode == "greedy":
            init = init + (ops.zeros((batch_size, self._mask.shape[1]), dtype="float32"),)
        outputs = ops.scan(step, init, xs)[1]
        chosen, log_probs, entropies = outputs[3:6]
        result = (
            ops.transpose(chosen),
            ops.transpose(log_probs),
            ops.transpose(entropies),
        )
        if mode == "greedy":
            result = result + (ops.transpose(outputs[6], (1, 0, 2)),)
        return result

    def call(self, inputs):
        # PPO's ratio is against `old_log_prob`, the log-probability under the policy that drew
        # the sequence (stored when it was sampled), not the policy at update time.
        _, log_probs, entropies = self.run(decisions=inputs["decisions"])
        log_prob = ops.sum(log_probs, axis=1)
        entropy = ops.sum(entropies, axis=1)
        advantage = inputs["advantage"]
        ratio = ops.exp(log_prob - inputs["old_log_prob"])
        surrogate = ratio * advantage
        if self.clip_epsilon is not None:
            clipped = ops.clip(ratio, 1.0 - self.clip_epsilon, 1.0 + self.clip_epsilon)
            surrogate = ops.minimum(surrogate, clipped * advantage)
        return -surrogate - self.entropy_weight * entropy


class _Runner(keras.Model):
    """Runs the policy in one mode (`"teacher"`, `"sample"` or `"greedy"`) without gradients.

    It exists so that `predict_on_batch` compiles the scan once per input shape (a plain
    eager call would retrace it each time under JAX).
    """

    def __init__(self, policy, mode, **kwargs):
        super().__init__(**kwargs)
        self.policy = policy
        self.mode = mode
        self.built = True

    def call(self, inputs):
        if self.mode == "teacher":
            return self.policy.run(decisions=inputs)
        if self.mode == "sample":
            return self.policy.run(uniforms=inputs)
        return self.policy.run()


def _to_numpy(variable):
    """A NumPy copy of a Keras variable's value.

    Converting the variable itself (or, under TensorFlow, its `tf.Variable`) goes through an
    `__array__` without a `copy` argument, which NumPy 2 warns about on every call; a tensor
    read from it (`ops.copy`) converts cleanly under every backend.
    """
    return ops.convert_to_numpy(ops.copy(variable))


def _per_sequence_loss(y_true, y_pred):
    del y_true  # The policy computes its own loss; Keras only averages and differentiates it.
    return y_pred


class _Network:
    """One compiled policy network (policy, its optimizer, the runners), lent to controllers.

    Building a `_Policy` and compiling its sampling, scoring and training steps costs about a
    second (several under JAX). Every controller of the same shape and settings in a process
    shares one network, so that cost is paid once per process: the controller using it
    holds its weights and optimizer state in the network's variables; when another one
    needs it, those are copied out to the first controller (`stash`) and the second's are
    put in. A process that runs one search never swaps; the numbers are those of a network
    of one's own.
    """

    def __init__(self, controller):
        self.policy = _Policy(
            controller.num_choices,
            controller.units,
            controller.embedding_dim,
            clip_epsilon=controller.clip_epsilon if controller.algorithm == "ppo" else None,
            entropy_weight=controller.entropy_weight,
            logit_clip=controller.logit_clip,
            temperature=controller.temperature,
            name="controller_policy",
        )
        self.optimizer = keras.optimizers.Adam(learning_rate=controller.learning_rate)
        self.optimizer.build(self.policy.trainable_variables)
        self.policy.compile(optimizer=self.optimizer, loss=_per_sequence_loss)
        self.runners = {
            mode: _Runner(self.policy, mode, name=f"controller_{mode}")
            for mode in ("teacher", "sample", "greedy")
        }
        self.fresh_optimizer = [_to_numpy(v) for v in self.optimizer.variables]
        self.lock = threading.RLock()
        self._user = None  # weak reference to the controller whose state is in the variables

    def arrays(self):
        return (
            [_to_numpy(v) for v in self.policy.weights],
            [_to_numpy(v) for v in self.optimizer.variables],
        )

    def load(self, weights, optimizer):
        for variable, value in zip(self.policy.weights, weights):
            variable.assign(np.asarray(value))
        for variable, value in zip(self.optimizer.variables, optimizer):
            variable.assign(np.asarray(value))

    @contextlib.contextmanager
    def lent_to(self, controller):
        """Holds the network for `controller`, with its state in the variables."""
        with self.lock:
            user = None if self._user is None else self._user()
            if user is not controller:
                if user is not None:
                    user._stash = self.arrays()
                self.load(*controller._stash)
                controller._stash = None
                self._user = weakref.ref(controller)
            yield self


class _Networks:
    """The process's `_Network`s, one per controller shape and compiled settings."""

    _SETTINGS = ("units", "embedding_dim", "algorithm", "clip_epsilon", "entropy_weight",
                 "logit_clip", "temperature", "learning_rate")  # fmt: skip

    def __init__(self):
        self._lock = threading.Lock()
        self._networks = {}

    def get(self, controller):
        key = (tuple(controller.num_choices),) + tuple(
            getattr(controller, name) for name in self._SETTINGS
        )
        with self._lock:
            if key not in self._networks:
                self._networks[key] = _Network(controller)
            return self._networks[key]


_NETWORKS = _Networks()


def _is_number(value):
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def _check_preset(preset):
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(
            f"Unknown preset. Accepted: {sorted(PRESETS)}. Received: preset={preset!r}"
        )
    return preset


def _check_non_negative(value, name):
    if not _is_number(value) or not math.isfinite(value) or not value >= 0:
        raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={value!r}")
    return float(value)


def validate_settings(preset="default", units=100, embedding_dim=None, seed=None, **settings):
    """Resolves and checks `Controller` settings (all but `num_choices`) without building.

    Args:
        preset: the name of a preset of `PRESETS`.
        units, embedding_dim, seed: as for `Controller`.
        **settings: the training settings (`CONTROLLER_SETTINGS`); a missing or `None` one
            takes the preset's value.

    Returns:
        The settings as plain Python values, `embedding_dim` resolved, with `preset`.

    Raises:
        ValueError: naming the first bad setting and what is accepted.

    Example:

    >>> validate_settings("nasnet", learning_rate=1e-3)["learning_rate"]
    0.001
    """
    preset = _check_preset(preset)
    unknown = sorted(set(settings) - set(CONTROLLER_SETTINGS))
    if unknown:
        raise ValueError(
            f"Unrecognized controller settings {unknown}. Accepted: "
            f"{list(CONTROLLER_SETTINGS)}. Received: {unknown}"
        )
    values = {key: PRESETS[preset][key] for key in CONTROLLER_SETTINGS}
    values.update({key: value for key, value in settings.items() if value is not None})
    algorithm = values["algorithm"]
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"`algorithm` must be one of {ALGORITHMS}. Received: algorithm={algorithm!r}"
        )
    units = validators.positive_int(units, "units")
    embedding_dim = units if embedding_dim is None else embedding_dim
    baseline_decay = validators.momentum(values["baseline_decay"], "baseline_decay")
    if not isinstance(values["normalize_advantages"], (bool, np.bool_)):
        raise ValueError(
            "`normalize_advantages` must be True or False. "
            f"Received: normalize_advantages={values['normalize_advantages']!r}"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
    return {
        "preset": preset,
        "units": units,
        "embedding_dim": validators.positive_int(embedding_dim, "embedding_dim"),
        "algorithm": algorithm,
        "learning_rate": validators.positive_float(values["learning_rate"], "learning_rate"),
        "entropy_weight": _check_non_negative(values["entropy_weight"], "entropy_weight"),
        "baseline_decay": float(baseline_decay),
        "clip_epsilon": validators.positive_float(values["clip_epsilon"], "clip_epsilon"),
        "ppo_epochs": validators.positive_int(values["ppo_epochs"], "ppo_epochs"),
        "normalize_advantages": bool(values["normalize_advantages"]),
        "logit_clip": _check_non_negative(values["logit_clip"], "logit_clip"),
        "temperature": validators.positive_float(values["temperature"], "temperature"),
        "max_kl": _check_non_negative(values["max_kl"], "max_kl"),
        "seed": None if seed is None else int(seed),
    }


def _k3_kl(log_p_from, log_p_to):
    """Schulman's low-variance, non-negative estimate of KL(from || to) from samples."""
    log_ratio = np.asarray(log_p_to, "float64") - np.asarray(log_p_from, "float64")
    return float(np.mean(np.expm1(log_ratio) - log_ratio))


class Controller:
    """An autoregressive LSTM policy over a sequence of categorical decisions.

    Decision `t` chooses one of `num_choices[t]` options. At each step the LSTM reads the
    embedding of the previous decision (a learned start token at step 0) and a softmax head
    of its own gives the distribution of decision `t`. Every weight starts uniform in
    [-0.1, 0.1].

    `update(decisions, rewards, old_log_probs)` does one policy-gradient update on a batch of
    sampled sequences and their rewards. The advantage of a reward is its difference from a
    baseline, an exponential moving average of the rewards seen (initialised at the mean of
    the first batch, then updated once per reward, in order); with `normalize_advantages` the
    batch's advantages are then divided by their standard deviation, so the step size does
    not depend on the reward's scale. With `algorithm="ppo"` the clipped PPO objective is
    maximised for up to `ppo_epochs` Adam steps on the batch, stopping early once the
    policy has moved more than `max_kl` (estimated KL on the batch) from where the update
    started; the PPO ratio is taken against each sequence's log-probability when it was
    sampled (`sample(n, return_log_prob=True)`), so sequences drawn before an earlier update
    are treated as off-policy. With `algorithm="reinforce"`, one Adam step on
    `ratio * advantage`. Both add `entropy_weight` times the (summed) entropy of the
    sequences.

    The training settings come from `preset` (a name of `PRESETS`); any of them given
    explicitly overrides the preset's value.

    Args:
        num_choices: list of positive ints, the number of options of each decision, in order.
        units: int, LSTM units. Defaults to 100 (NASNet).
        embedding_dim: int, size of the decision embeddings. Defaults to `units`.
        algorithm: `"ppo"` (as NASNet) or `"reinforce"` (as NAS 2016).
        learning_rate: float, Adam learning rate.
        entropy_weight: float >= 0, weight of the entropy bonus.
        baseline_decay: float in [0, 1), decay of the reward moving average.
        clip_epsilon: float > 0, the PPO ratio clip. Unused by REINFORCE.
        ppo_epochs: int, the most Adam steps per PPO update on the same batch.
        seed: int or None, seeds the initial weights and the sampling. `None` draws one.
        preset: `"default"` (tuned to learn within a few hundred rewards) or `"nasnet"` (the
            papers' settings).
        normalize_advantages: bool, divide each batch's advantages by their standard
            deviation (after subtracting the baseline).
        logit_clip: float >= 0, bound the logits to `logit_clip * tanh(logits)` (ENAS);
            0 turns it off.
        temperature: float > 0, the logits are divided by it (before `logit_clip`).
        max_kl: float >= 0, stop a PPO update's steps once the estimated KL divergence from
            the policy at the start of the update exceeds it; 0 turns the stop off.

    Example:

    >>> controller = Controller([3, 2, 4], units=8, seed=0)
    >>> decisions, log_probs = controller.sample(5, return_log_prob=True)
    >>> decisions.shape, log_probs.shape
    ((5, 3), (5,))
    >>> stats = controller.update(decisions, [1.0, 0.0, 0.5, 0.2, 0.9], log_probs)
    >>> stats["update"], len(stats["decision_probs"])
    (1, 3)
    >>> Controller([3, 2], preset="nasnet", units=8).learning_rate
    0.00035
    """

    def __init__(
        self,
        num_choices,
        units=100,
        embedding_dim=None,
        # The training settings (`None`: the preset's).
        algorithm=None, learning_rate=None, entropy_weight=None, baseline_decay=None,
        clip_epsilon=None, ppo_epochs=None,
        seed=None,
        *,
        preset="default",
        normalize_advantages=None, logit_clip=None, temperature=None, max_kl=None,
    ):
        if isinstance(num_choices, (str, bytes)) or not hasattr(num_choices, "__len__"):
            raise ValueError(
                "`num_choices` must be a non-empty list of positive ints, one per decision. "
                f"Received: num_choices={num_choices!r}"
            )
        if len(num_choices) == 0 or any(
            isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1
            for k in num_choices
        ):
            raise ValueError(
                "`num_choices` must be a non-empty list of positive ints, one per decision. "
                f"Received: num_choices={list(num_choices)!r}"
            )
        settings = validate_settings(
            preset=preset,
            units=units,
            embedding_dim=embedding_dim,
            seed=seed,
            algorithm=algorithm,
            learning_rate=learning_rate,
            entropy_weight=entropy_weight,
            baseline_decay=baseline_decay,
            clip_epsilon=clip_epsilon,
            ppo_epochs=ppo_epochs,
            normalize_advantages=normalize_advantages,
            logit_clip=logit_clip,
            temperature=temperature,
            max_kl=max_kl,
        )
        seed = settings["seed"]
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])

        self.num_choices = [int(k) for k in num_choices]
        self.preset = settings["preset"]
        self.units = settings["units"]
        self.embedding_dim = settings["embedding_dim"]
        for key in CONTROLLER_SETTINGS:
            setattr(self, key, settings[key])
        self.seed = int(seed)

        self._network = _NETWORKS.get(self)
        init_rng = np.random.default_rng([self.seed, 0])
        weights = [
            init_rng.uniform(-_INIT_RANGE, _INIT_RANGE, tuple(v.shape)).astype("float32")
            for v in self._network.policy.weights
        ]
        # Put in when the network is next lent to this controller.
        self._stash = (weights, self._network.fresh_optimizer)
        self._rng = np.random.default_rng([self.seed, 1])
        self.baseline = None
        self.num_updates = 0
        self.history = []

    @property
    def num_decisions(self):
        return len(self.num_choices)

    def get_config(self):
        """The constructor arguments (resolved, with the drawn seed), enough to rebuild it."""
        config = {
            "num_choices": list(self.num_choices),
            "units": self.units,
            "embedding_dim": self.embedding_dim,
            "preset": self.preset,
            "seed": self.seed,
        }
        config.update({key: getattr(self, key) for key in CONTROLLER_SETTINGS})
        return config

    def _check_decisions(self, decisions):
        array = np.asarray(decisions)
        if array.ndim == 1:
            array = array[None, :]
        if (
            array.ndim != 2
            or array.shape[1] != self.num_decisions
            or array.shape[0] == 0
            or not np.issubdtype(array.dtype, np.integer)
        ):
            raise ValueError(
                f"`decisions` must be ints of shape [n, {self.num_decisions}] (n >= 1). "
                f"Received: decisions of shape {array.shape} and dtype {array.dtype}"
            )
        bad = (array < 0) | (array >= np.asarray(self.num_choices)[None, :])
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"Decision {col} must be in [0, {self.num_choices[col]}). "
                f"Received: decisions[{row}, {col}]={array[row, col]}"
            )
        return array.astype("int32")

    def sample(self, n=1, return_log_prob=False, rng=None):
        """Draws `n` decision sequences from the policy.

        Args:
            n: int, how many sequences.
            return_log_prob: bool, also return each sequence's log-probability under the
                policy that drew it (give it back to `update` as `old_log_probs`).
            rng: optional `np.random.Generator` to draw from instead of the controller's own
                random state, which is then left as it was (e.g. draws that a resumed run
                must repeat, seeded by the caller).

        Returns:
            An int array of shape `[n, num_decisions]`; with `return_log_prob`, a tuple
            `(decisions, log_probs)` with `log_probs` a float64 array of shape `[n]`.
        """
        n = validators.positive_int(n, "n")
        if rng is None:
            rng = self._rng
        elif not isinstance(rng, np.random.Generator):
            raise ValueError(
                f"`rng` must be a numpy.random.Generator or None. Received: rng={rng!r}"
            )
        # Inverse-CDF sampling from NumPy uniforms keeps the draws reproducible and the
        # generator state plain data, whatever the backend.
        uniforms = rng.random((n, self.num_decisions)).astype("float32")
        decisions, log_probs, _ = self._run("sample", uniforms)
        decisions = decisions.astype("int32")
        if return_log_prob:
            return decisions, log_probs.astype("float64").sum(axis=1)
        return decisions

    def _run(self, mode, rows):
        """Runs a `_Runner` on `rows` (`[n, D]`), in chunks padded to a few batch sizes.

        Each new batch size compiles the scan again under JAX (and retraces it once under
        TensorFlow), so batches are padded to `_batch_bucket(n)` and cut back afterwards.
        """
        outputs = []
        for start in range(0, len(rows), _MAX_BATCH):
            chunk = rows[start : start + _MAX_BATCH]
            n = len(chunk)
            padded = np.zeros((_batch_bucket(n), chunk.shape[1]), chunk.dtype)
            padded[:n] = chunk
            with self._network.lent_to(self) as network:
                result = network.runners[mode].predict_on_batch(padded)
            outputs.append([np.asarray(r)[:n] for r in result])  # NumPy already
        return [np.concatenate(parts) for parts in zip(*outputs)]

    def _evaluate(self, decisions):
        _, log_probs, entropies = self._run("teacher", decisions)
        return log_probs, entropies

    def log_prob(self, decisions):
        """Log-probability of each whole sequence under the policy, shape `[n]`."""
        log_probs, _ = self._evaluate(self._check_decisions(decisions))
        return log_probs.sum(axis=1)

    def probabilities(self, decisions):
        """Per-decision probability of each given choice (given the ones before), `[n, D]`."""
        log_probs, _ = self._evaluate(self._check_decisions(decisions))
        return np.exp(log_probs)

    def entropy(self, decisions=None):
        """Summed per-step entropy along each sequence, shape `[n]`.

        Args:
            decisions: int array `[n, D]`; `None` evaluates along the most likely choices
                (greedy decoding), which leaves the random state untouched.
        """
        if decisions is None:
            decisions = self.greedy()[None, :]
        _, entropies = self._evaluate(self._check_decisions(decisions))
        return entropies.sum(axis=1)

    def _greedy(self):
        dummy = np.zeros((1, self.num_decisions), dtype="float32")
        with self._network.lent_to(self) as network:
            decisions, _, _, probs = network.runners["greedy"].predict_on_batch(dummy)
        return np.asarray(decisions)[0].astype("int32"), np.asarray(probs)[0]

    def greedy(self):
        """The most likely choice at each step, fed back as it goes: shape `[D]`."""
        return self._greedy()[0]

    def decision_probs(self, decimals=4):
        """The probability vector of every decision along the greedy path.

        Each decision's distribution is conditioned on the greedy choices before it (the path
        `greedy()` returns), which leaves the random state untouched.

        Args:
            decimals: int, rounding of the probabilities.

        Returns:
            A list (one entry per decision) of lists of floats (one per choice).
        """
        _, probs = self._greedy()
        return [
            [round(float(p), decimals) for p in probs[t, :k]]
            for t, k in enumerate(self.num_choices)
        ]

    def _check_old_log_probs(self, old_log_probs, n):
        if old_log_probs is None:
            return np.full((n,), np.nan)
        array = np.asarray(old_log_probs, dtype="float64").reshape(-1)
        if array.shape[0] != n or np.any(np.isinf(array)) or np.any(array > 1e-4):
            raise ValueError(
                f"`old_log_probs` must be {n} log-probabilities (finite, <= 0; NaN for 'the "
                f"current policy'), one per sequence. Received: old_log_probs={array.tolist()}"
            )
        return array

    def update(self, decisions, rewards, old_log_probs=None):
        """One policy-gradient update on sampled sequences and their rewards.

        Args:
            decisions: int array `[n, D]`, the sequences (as returned by `sample`).
            rewards: float array `[n]`, finite, one per sequence (higher is better).
            old_log_probs: float array `[n]`, the log-probability of each sequence under the
                policy that sampled it (from `sample(n, return_log_prob=True)`), used as PPO's
                old log-probabilities. `None` (or a NaN entry) takes the current policy's, as
                if the sequence had just been drawn.

        Returns:
            A dict: `update` (1-based count), `batch_size`, `reward_mean`, `reward_max`,
            `reward_min`, `baseline` (after the update), `advantage_mean` (before
            normalisation), `loss` (of the last step), `entropy` (mean summed entropy of the
            batch before the update), `approx_kl` (estimated KL divergence between the
            policy before and after the update, on the batch), `stale_kl` (the same between
            the sampling policies and the policy before the update: 0 when on-policy),
            `clip_fraction` (share of the sequences whose PPO ratio was outside
            `1 +- clip_epsilon`, averaged over the steps), `ppo_steps` (Adam steps taken)
            and `decision_probs` (see `decision_probs()`, after the update).
        """
        decisions = self._check_decisions(decisions)
        n = decisions.shape[0]
        rewards = np.asarray(rewards, dtype="float64").reshape(-1)
        if rewards.shape[0] != n or not np.all(np.isfinite(rewards)):
            raise ValueError(
                f"`rewards` must be {n} finite numbers, one per sequence. "
                f"Received: rewards={rewards.tolist()}"
            )
        behaviour = self._check_old_log_probs(old_log_probs, n)
        start_log_probs, entropies = self._evaluate(decisions)
        start = start_log_probs.sum(axis=1).astype("float64")
        behaviour = np.where(np.isnan(behaviour), start, behaviour)
        baseline = float(rewards.mean()) if self.baseline is None else self.baseline
        advantage = rewards - baseline
        scaled = advantage
        if self.normalize_advantages and n > 1:
            spread = float(advantage.std())
            # Equal rewards (spread ~ 0) carry no preference: leave their tiny differences be.
            if spread > 1e-8 * max(1.0, float(np.abs(rewards).max())):
                scaled = advantage / spread
        inputs = {
            "decisions": decisions,
            "old_log_prob": behaviour.astype("float32"),
            "advantage": scaled.astype("float32"),
        }
        targets = np.zeros((n,), dtype="float32")
        max_steps = self.ppo_epochs if self.algorithm == "ppo" else 1
        current, loss, steps, clipped = start, math.nan, 0, []
        for _ in range(max_steps):
            ratio = np.exp(current - behaviour)
            clipped.append(float(np.mean(np.abs(ratio - 1.0) > self.clip_epsilon)))
            with self._network.lent_to(self) as network:
                loss = network.policy.train_on_batch(inputs, targets)
            steps += 1
            current = self.log_prob(decisions).astype("float64")
            if self.max_kl > 0 and _k3_kl(start, current) > self.max_kl:
                break
        for reward in rewards:
            baseline = self.baseline_decay * baseline + (1.0 - self.baseline_decay) * reward
        self.baseline = float(baseline)
        self.num_updates += 1
        stats = {
            "update": self.num_updates,
            "batch_size": int(n),
            "reward_mean": float(rewards.mean()),
            "reward_max": float(rewards.max()),
            "reward_min": float(rewards.min()),
            "baseline": self.baseline,
            "advantage_mean": float(advantage.mean()),
            "loss": float(np.asarray(loss).reshape(-1)[0]),
            "entropy": float(entropies.sum(axis=1).mean()),
            "approx_kl": _k3_kl(start, current),
            "stale_kl": _k3_kl(behaviour, start),
            "clip_fraction": float(np.mean(clipped)) if self.algorithm == "ppo" else 0.0,
            "ppo_steps": steps,
            "decision_probs": self.decision_probs(),
        }
        self.history.append(stats)
        logger.debug(
            "controller update %d: %s",
            self.num_updates,
            {k: v for k, v in stats.items() if k != "decision_probs"},
        )
        return stats

    def get_state(self, include_arrays=True):
        """Everything needed to resume exactly: weights, optimizer, baseline, random state.

        Args:
            include_arrays: bool. With `False` the `weights` and `optimizer` entries are left
                out (copying them is most of the cost), e.g. for a caller that saves the
                arrays only when they changed (`arrays()`).

        Returns:
            A dict with `config`, `weights` and `optimizer` (lists of NumPy arrays) and the
            JSON-serialisable `baseline`, `num_updates`, `rng` and `history`.
        """
        state = {
            "config": self.get_config(),
            "baseline": self.baseline,
            "num_updates": self.num_updates,
            "rng": self._rng.bit_generator.state,
            "history": [dict(h) for h in self.history],
        }
        if include_arrays:
            state["weights"], state["optimizer"] = self.arrays()
        return state

    def arrays(self):
        """`(weights, optimizer)`: copies of the policy's weights and of the optimizer's
        variables, as lists of NumPy arrays (what `get_state` holds under those keys)."""
        with self._network.lent_to(self) as network:
            return network.arrays()

    def set_state(self, state):
        """Restores a state returned by `get_state` (of a controller of the same shape)."""
        config = state.get("config", {})
        for key in ("num_choices", "units", "embedding_dim"):
            mine = self.get_config()[key]
            if key in config and list(np.atleast_1d(config[key])) != list(np.atleast_1d(mine)):
                raise ValueError(
                    f"The state is of a controller with {key}={config[key]}; this one has "
                    f"{key}={mine}."
                )
        weights, optimizer = list(state["weights"]), list(state["optimizer"])
        network = self._network
        expected = [tuple(v.shape) for v in network.policy.weights + network.optimizer.variables]
        received = [tuple(np.shape(a)) for a in weights + optimizer]
        if len(weights) != len(network.policy.weights) or received != expected:
            raise ValueError(
                "The state's arrays do not fit this controller. Expected shapes "
                f"{expected}. Received: {received}"
            )
        with network.lent_to(self):
            network.load(weights, optimizer)
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.num_updates = int(state["num_updates"])
        self._rng.bit_generator.state = state["rng"]
        self.history = [dict(h) for h in state["history"]]


def config_from_saved(config):
    """A saved `get_config()` as `Controller` arguments; states saved before presets existed
    were trained with the papers' settings, so they resume under `preset="nasnet"`."""
    config = dict(config)
    config.setdefault("preset", "nasnet")
    return config
