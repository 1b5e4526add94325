"""Values shared by the search code: hyperparameter values read back (the spaces' `decode`),
the hash that identifies a set of values (the oracles' duplicate check), and the checked
rewards of `sample_candidates` candidates (the oracles' `add_rewards`)."""

import hashlib
import math

import keras_tuner
import numpy as np


def as_values(values, names=()):
    """The dict of hyperparameter `values` (a dict or a `keras_tuner.HyperParameters`), checked
    to hold every one of `names`; other entries pass through untouched.

    Example:

    >>> as_values({"a": 1, "b": 2}, names=["a"])
    {'a': 1, 'b': 2}
    """
    if isinstance(values, keras_tuner.HyperParameters):
        values = values.values
    if not isinstance(values, dict):
        raise ValueError(
            "`values` must be a dict of hyperparameter values or a "
            f"`keras_tuner.HyperParameters`. Received: values={values!r}"
        )
    missing = [name for name in names if name not in values]
    if missing:
        raise ValueError(
            f"The values lack {len(missing)} of the space's {len(names)} decisions, "
            f"e.g. {missing[:3]}. Received keys: {sorted(values)[:10]}"
        )
    return values


def values_hash(values):
    """A 32-hex-digit hash of a dict of hyperparameter values, independent of key order.

    The oracles use it to tell whether a set of values was tried already. It is computed as
    KerasTuner 1.4 computes its own (`Oracle._compute_values_hash`), so the hashes saved by
    searches started before the oracles kept their own still compare equal.

    Example:

    >>> values_hash({"a": 1, "b": True}) == values_hash({"b": True, "a": 1})
    True
    >>> len(values_hash({"a": 1}))
    32
    """
    text = "".join(f"{key}={values[key]}" for key in sorted(values))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def candidate_rewards(candidate_ids, rewards, known):
    """Checks the arguments of an oracle's `add_rewards`: `(ids, rewards)` as a list of ids
    and a list of floats, or a `ValueError` (nothing recorded then).

    Args:
        candidate_ids: an id, or a list of them, each drawn by `sample_candidates(record=True)`.
        rewards: one finite number per id.
        known: the ids that may be rewarded now (recorded, not rewarded yet).

    Example:

    >>> candidate_rewards("c000001", 0.5, {"c000001"})
    (['c000001'], [0.5])
    """
    if isinstance(candidate_ids, str):
        candidate_ids = [candidate_ids]
    ids = list(candidate_ids)
    values = None if rewards is None else list(np.atleast_1d(np.asarray(rewards, "object")))
    if values is None or len(values) != len(ids):
        raise ValueError(
            f"`rewards` must give one number per candidate id ({len(ids)}). "
            f"Received: rewards={rewards!r}"
        )
    unknown = [c for c in ids if c not in known]
    repeated = sorted({c for c in ids if ids.count(c) > 1})
    if unknown or repeated:
        raise ValueError(
            "`candidate_ids` must name candidates drawn by `sample_candidates(record=True)` "
            "and not rewarded yet, each once. Received: "
            + (f"unknown ids {unknown}" if unknown else f"repeated ids {repeated}")
        )
    if not all(is_finite_number(v) for v in values):
        raise ValueError(f"`rewards` must be finite numbers. Received: rewards={values!r}")
    return ids, [float(v) for v in values]


def is_finite_number(value):
    """Whether `value` is a finite int or float (NumPy's too), not a bool."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(float(value))
    )

