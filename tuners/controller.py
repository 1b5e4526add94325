"""The RNN controller: an autoregressive LSTM policy trained by PPO or REINFORCE.

The controller of Zoph & Le (2016) and Zoph et al. (NASNet, 2017): a one-layer LSTM emits one
categorical decision after another; each decision is fed back, through an embedding, as the
input of the next step, so every choice is conditioned on the ones before it. Each decision has
its own softmax head sized to its number of choices. Rewards (e.g. child validation accuracies)
train it by policy gradient against an exponential-moving-average baseline.

Only `keras`, `keras.ops` and `keras.layers` are used, so it runs under the TensorFlow and the
JAX backends. The random draws come from a NumPy generator whose state is part of
`get_state()`, so a restored controller samples exactly what the saved one would have.
"""

import logging
import math

import keras
import numpy as np
from keras import ops

logger = logging.getLogger(__name__)

ALGORITHMS = ("ppo", "reinforce")
_MASKED = -1e9  # Logit of a choice a decision does not have (finite: 0 * it stays 0).
_INIT_RANGE = 0.1  # NASNet / NAS 2016: every controller weight uniform in [-0.1, 0.1].


class _Policy(keras.Model):
    """The LSTM policy network; its `call` returns the per-sequence training loss.

    `call` takes `{"decisions", "old_log_prob", "advantage"}` and returns one loss per
    sequence, so `train_on_batch` (with a loss that returns `y_pred`) does the gradient step
    the same way under every backend.

    The decisions run as one `keras.ops.scan` rather than an unrolled Python loop, so the
    compiled graph (and JAX's compile time) does not grow with the number of decisions. For
    that, the softmax heads are stacked into one `[D, units, K]` kernel (K = the largest
    number of choices) and the logits beyond a decision's own choices are masked out.
    """

    def __init__(self, num_choices, units, embedding_dim, clip_epsilon, entropy_weight, **kwargs):
        super().__init__(**kwargs)
        self.num_choices = list(num_choices)
        self.units = units
        self.clip_epsilon = clip_epsilon
        self.entropy_weight = entropy_weight
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
        per-decision log-probabilities and entropies, each `[n, D]`.
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
            logits = ops.matmul(out, kernel) + bias + mask
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
            # Keras' TensorFlow `scan` needs the per-step outputs shaped like the carry.
            return carry, carry

        empty = ops.zeros((batch_size,), dtype="float32")
        init = (zeros, zeros, start, start, empty, empty)
        _, (_, _, _, chosen, log_probs, entropies) = ops.scan(step, init, xs)
        return (
            ops.transpose(chosen),
            ops.transpose(log_probs),
            ops.transpose(entropies),
        )

    def call(self, inputs):
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


def _per_sequence_loss(y_true, y_pred):
    del y_true  # The policy computes its own loss; Keras only averages and differentiates it.
    return y_pred


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _check_positive_float(value, name):
    if not _is_number(value) or not math.isfinite(value) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
    return float(value)


def _is_number(value):
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def validate_settings(
    units=100,
    embedding_dim=None,
    algorithm="ppo",
    learning_rate=3.5e-4,
    entropy_weight=1e-5,
    baseline_decay=0.95,
    clip_epsilon=0.2,
    ppo_epochs=4,
    seed=None,
):
    """Checks `Controller` settings (all but `num_choices`) without building anything.

    Returns:
        The settings as plain Python numbers, `embedding_dim` resolved.

    Raises:
        ValueError: naming the first bad setting and what is accepted.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"`algorithm` must be one of {ALGORITHMS}. Received: algorithm={algorithm!r}"
        )
    units = _check_positive_int(units, "units")
    embedding_dim = units if embedding_dim is None else embedding_dim
    if not _is_number(entropy_weight) or not entropy_weight >= 0:
        raise ValueError(
            f"`entropy_weight` must be a number >= 0. Received: entropy_weight={entropy_weight!r}"
        )
    if not _is_number(baseline_decay) or not 0 <= baseline_decay < 1:
        raise ValueError(
            "`baseline_decay` must be a number in [0, 1). "
            f"Received: baseline_decay={baseline_decay!r}"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
    return {
        "units": units,
        "embedding_dim": _check_positive_int(embedding_dim, "embedding_dim"),
        "algorithm": algorithm,
        "learning_rate": _check_positive_float(learning_rate, "learning_rate"),
        "entropy_weight": float(entropy_weight),
        "baseline_decay": float(baseline_decay),
        "clip_epsilon": _check_positive_float(clip_epsilon, "clip_epsilon"),
        "ppo_epochs": _check_positive_int(ppo_epochs, "ppo_epochs"),
        "seed": None if seed is None else int(seed),
    }


class Controller:
    """An autoregressive LSTM policy over a sequence of categorical decisions.

    Decision `t` chooses one of `num_choices[t]` options. At each step the LSTM reads the
    embedding of the previous decision (a learned start token at step 0) and a softmax head
    of its own gives the distribution of decision `t`. Every weight starts uniform in
    [-0.1, 0.1].

    `update(decisions, rewards)` does one policy-gradient update on a batch of sampled
    sequences and their rewards. The advantage of a reward is its difference from a baseline,
    an exponential moving average of the rewards seen (initialised at the mean of the first
    batch, then updated once per reward, in order). With `algorithm="ppo"` the clipped PPO
    objective is maximised for `ppo_epochs` Adam steps on the batch; with
    `algorithm="reinforce"`, one Adam step on `advantage * log_prob`. Both add
    `entropy_weight` times the entropy of the sampled sequences.

    Args:
        num_choices: list of positive ints, the number of options of each decision, in order.
        units: int, LSTM units. Defaults to 100 (NASNet).
        embedding_dim: int, size of the decision embeddings. Defaults to `units`.
        algorithm: `"ppo"` (default, as NASNet) or `"reinforce"` (as NAS 2016).
        learning_rate: float, Adam learning rate. Defaults to 3.5e-4 (NASNet).
        entropy_weight: float >= 0, weight of the entropy bonus. Defaults to 1e-5.
        baseline_decay: float in [0, 1), decay of the reward moving average. Defaults to 0.95.
        clip_epsilon: float > 0, the PPO ratio clip. Defaults to 0.2. Unused by REINFORCE.
        ppo_epochs: int, Adam steps per PPO update on the same batch. Defaults to 4.
        seed: int or None, seeds the initial weights and the sampling. `None` draws one.

    Example:

    >>> controller = Controller([3, 2, 4], units=8, seed=0)
    >>> decisions = controller.sample(5)
    >>> decisions.shape
    (5, 3)
    >>> stats = controller.update(decisions, [1.0, 0.0, 0.5, 0.2, 0.9])
    >>> stats["update"]
    1
    """

    def __init__(
        self,
        num_choices,
        units=100,
        embedding_dim=None,
        algorithm="ppo",
        learning_rate=3.5e-4,
        entropy_weight=1e-5,
        baseline_decay=0.95,
        clip_epsilon=0.2,
        ppo_epochs=4,
        seed=None,
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
            units=units,
            embedding_dim=embedding_dim,
            algorithm=algorithm,
            learning_rate=learning_rate,
            entropy_weight=entropy_weight,
            baseline_decay=baseline_decay,
            clip_epsilon=clip_epsilon,
            ppo_epochs=ppo_epochs,
            seed=seed,
        )
        units, embedding_dim = settings["units"], settings["embedding_dim"]
        learning_rate, clip_epsilon = settings["learning_rate"], settings["clip_epsilon"]
        ppo_epochs, seed = settings["ppo_epochs"], settings["seed"]
        entropy_weight, baseline_decay = settings["entropy_weight"], settings["baseline_decay"]
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])

        self.num_choices = [int(k) for k in num_choices]
        self.units = units
        self.embedding_dim = embedding_dim
        self.algorithm = algorithm
        self.learning_rate = learning_rate
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        self.clip_epsilon = clip_epsilon
        self.ppo_epochs = ppo_epochs
        self.seed = int(seed)

        self._policy = _Policy(
            self.num_choices,
            units,
            embedding_dim,
            clip_epsilon=clip_epsilon if algorithm == "ppo" else None,
            entropy_weight=self.entropy_weight,
            name="controller_policy",
        )
        init_rng = np.random.default_rng([self.seed, 0])
        for variable in self._policy.weights:
            variable.assign(
                init_rng.uniform(-_INIT_RANGE, _INIT_RANGE, tuple(variable.shape)).astype("float32")
            )
        self._optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        self._optimizer.build(self._policy.trainable_variables)
        self._policy.compile(optimizer=self._optimizer, loss=_per_sequence_loss)
        self._runners = {
            mode: _Runner(self._policy, mode, name=f"controller_{mode}")
            for mode in ("teacher", "sample", "greedy")
        }
        self._rng = np.random.default_rng([self.seed, 1])
        self.baseline = None
        self.num_updates = 0
        self.history = []

    @property
    def num_decisions(self):
        return len(self.num_choices)

    def get_config(self):
        """The constructor arguments (with the drawn seed), enough to rebuild the controller."""
        return {
            "num_choices": list(self.num_choices),
            "units": self.units,
            "embedding_dim": self.embedding_dim,
            "algorithm": self.algorithm,
            "learning_rate": self.learning_rate,
            "entropy_weight": self.entropy_weight,
            "baseline_decay": self.baseline_decay,
            "clip_epsilon": self.clip_epsilon,
            "ppo_epochs": self.ppo_epochs,
            "seed": self.seed,
        }

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

    def sample(self, n=1):
        """Draws `n` decision sequences from the policy.

        Args:
            n: int, how many sequences.

        Returns:
            An int array of shape `[n, num_decisions]`.
        """
        n = _check_positive_int(n, "n")
        # Inverse-CDF sampling from NumPy uniforms keeps the draws reproducible and the
        # generator state plain data, whatever the backend.
        uniforms = self._rng.random((n, self.num_decisions)).astype("float32")
        decisions, _, _ = self._runners["sample"].predict_on_batch(uniforms)
        return np.asarray(decisions).astype("int32")

    def _evaluate(self, decisions):
        _, log_probs, entropies = self._runners["teacher"].predict_on_batch(decisions)
        return np.asarray(log_probs), np.asarray(entropies)

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

    def greedy(self):
        """The most likely choice at each step, fed back as it goes: shape `[D]`."""
        dummy = np.zeros((1, self.num_decisions), dtype="float32")
        decisions, _, _ = self._runners["greedy"].predict_on_batch(dummy)
        return np.asarray(decisions)[0].astype("int32")

    def update(self, decisions, rewards):
        """One policy-gradient update on sampled sequences and their rewards.

        Args:
            decisions: int array `[n, D]`, the sequences (as returned by `sample`).
            rewards: float array `[n]`, finite, one per sequence (higher is better).

        Returns:
            A dict of floats: `update` (1-based count), `reward_mean`, `reward_max`,
            `reward_min`, `baseline` (after the update), `advantage_mean`, `loss`, `entropy`
            (mean summed entropy of the batch before the update) and `approx_kl` (mean
            log-probability drop of the batch caused by the update).
        """
        decisions = self._check_decisions(decisions)
        rewards = np.asarray(rewards, dtype="float64").reshape(-1)
        if rewards.shape[0] != decisions.shape[0] or not np.all(np.isfinite(rewards)):
            raise ValueError(
                f"`rewards` must be {decisions.shape[0]} finite numbers, one per sequence. "
                f"Received: rewards={rewards.tolist()}"
            )
        baseline = float(rewards.mean()) if self.baseline is None else self.baseline
        advantage = (rewards - baseline).astype("float32")
        old_log_probs, entropies = self._evaluate(decisions)
        old_log_prob = old_log_probs.sum(axis=1).astype("float32")
        inputs = {
            "decisions": decisions,
            "old_log_prob": old_log_prob,
            "advantage": advantage,
        }
        targets = np.zeros_like(advantage)
        steps = self.ppo_epochs if self.algorithm == "ppo" else 1
        loss = math.nan
        for _ in range(steps):
            loss = self._policy.train_on_batch(inputs, targets)
        new_log_prob = self.log_prob(decisions)
        for reward in rewards:
            baseline = self.baseline_decay * baseline + (1.0 - self.baseline_decay) * reward
        self.baseline = float(baseline)
        self.num_updates += 1
        stats = {
            "update": self.num_updates,
            "batch_size": int(decisions.shape[0]),
            "reward_mean": float(rewards.mean()),
            "reward_max": float(rewards.max()),
            "reward_min": float(rewards.min()),
            "baseline": self.baseline,
            "advantage_mean": float(advantage.mean()),
            "loss": float(np.asarray(loss).reshape(-1)[0]),
            "entropy": float(entropies.sum(axis=1).mean()),
            "approx_kl": float(np.mean(old_log_prob - new_log_prob)),
        }
        self.history.append(stats)
        logger.debug("controller update %d: %s", self.num_updates, stats)
        return stats

    def get_state(self):
        """Everything needed to resume exactly: weights, optimizer, baseline, random state.

        Returns:
            A dict with `config`, `weights` and `optimizer` (lists of NumPy arrays) and the
            JSON-serialisable `baseline`, `num_updates`, `rng` and `history`.
        """
        return {
            "config": self.get_config(),
            "weights": [np.array(ops.convert_to_numpy(v)) for v in self._policy.weights],
            "optimizer": [np.array(ops.convert_to_numpy(v)) for v in self._optimizer.variables],
            "baseline": self.baseline,
            "num_updates": self.num_updates,
            "rng": self._rng.bit_generator.state,
            "history": [dict(h) for h in self.history],
        }

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
        expected = [tuple(v.shape) for v in self._policy.weights + self._optimizer.variables]
        received = [tuple(np.shape(a)) for a in weights + optimizer]
        if len(weights) != len(self._policy.weights) or received != expected:
            raise ValueError(
                "The state's arrays do not fit this controller. Expected shapes "
                f"{expected}. Received: {received}"
            )
        for variable, value in zip(self._policy.weights, weights):
            variable.assign(np.asarray(value))
        for variable, value in zip(self._optimizer.variables, optimizer):
            variable.assign(np.asarray(value))
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.num_updates = int(state["num_updates"])
        self._rng.bit_generator.state = state["rng"]
        self.history = [dict(h) for h in state["history"]]
