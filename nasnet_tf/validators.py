"""Argument checks shared by the builders, layers, tuners and oracles.

Each check raises `ValueError` in Keras' wording (what is accepted, then
`Received: name=value`) and returns the value normalised (a tuple, an `int`, a `float`).
This module imports neither Keras nor a backend, so the command line can use it too.

Example:

>>> positive_int(3, "num_cells")
3
>>> input_shape([32, 32, 3])
(32, 32, 3)
>>> probability(0.0, "drop_path_keep_prob")
Traceback (most recent call last):
...
ValueError: `drop_path_keep_prob` must be in (0, 1]. Received: drop_path_keep_prob=0.0
"""

import math
import numbers

__all__ = ["exact_keys", "given", "int_options", "input_shape", "known_fields", "momentum",
           "positive_float", "positive_int", "probability", "sequence"]


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def given(unset=None, /, **kwargs):
    """The keyword arguments a caller set: those whose value is not `unset` (by identity).

    Example:

    >>> given(num_blocks=3, ops=None)
    {'num_blocks': 3}
    """
    return {k: v for k, v in kwargs.items() if v is not unset}


def positive_int(value, name, minimum=1):
    """`value` as an `int`, which must be an integer `>= minimum` (not a bool)."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def positive_float(value, name):
    """`value` as a `float`, which must be a finite number `> 0`."""
    if not _is_real(value) or not math.isfinite(value) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
    return float(value)


def probability(value, name):
    """`value` as a `float` in (0, 1] (a keep probability)."""
    if not _is_real(value) or not 0.0 < value <= 1.0:
        raise ValueError(f"`{name}` must be in (0, 1]. Received: {name}={value!r}")
    return float(value)


def momentum(value, name="bn_momentum"):
    """`value` as a `float` in [0, 1) (a batch-norm or moving-average momentum)."""
    if not _is_real(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value!r}")
    return float(value)


def input_shape(value, name="input_shape"):
    """`value` as a `(height, width, channels)` tuple of positive integers."""
    try:
        shape = tuple(value)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3 or not all(_is_int(d) and d >= 1 for d in shape):
        raise ValueError(
            f"`{name}` must be (height, width, channels) of positive integers. "
            f"Received: {name}={value!r}"
        )
    return tuple(int(d) for d in shape)


def sequence(value, name, items, not_sequences=(str, bytes)):
    """`value` as a tuple, which must be iterable and no instance of `not_sequences` (text by
    default); `items` names what it holds in the error.

    Example:

    >>> sequence([0, 1], "inputs", "layer indices")
    (0, 1)
    >>> sequence("01", "inputs", "layer indices")
    Traceback (most recent call last):
    ...
    ValueError: `inputs` must be a sequence of layer indices. Received: inputs='01'
    """
    if isinstance(value, not_sequences) or not hasattr(value, "__iter__"):
        raise ValueError(f"`{name}` must be a sequence of {items}. Received: {name}={value!r}")
    return tuple(value)


def known_fields(mapping, accepted, kind):
    """`mapping` (a dict of a record's fields), whose keys must be among `accepted`; `kind`
    names the record in the error.

    Example:

    >>> known_fields({"kernel": 3}, ("filters", "stride"), "layer")
    Traceback (most recent call last):
    ...
    ValueError: Unknown layer fields ['kernel']. Accepted: ['filters', 'stride']
    """
    unknown = set(mapping) - set(accepted)
    if unknown:
        raise ValueError(f"Unknown {kind} fields {sorted(unknown)}. Accepted: {list(accepted)}")
    return mapping


def exact_keys(data, keys, rule):
    """`data`, which must be a dict with exactly the keys `keys`; the error says `rule`, then
    the keys, then what it received.

    Example:

    >>> exact_keys({"normal": []}, ["normal", "reduction"], "A genotype dict has the keys")
    Traceback (most recent call last):
    ...
    ValueError: A genotype dict has the keys ['normal', 'reduction']. Received: ['normal']
    """
    if not isinstance(data, dict) or set(data) != set(keys):
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{rule} {list(keys)}. Received: {got}")
    return data


def int_options(value, name):
    """`value` as a tuple of distinct integers >= 1, at least one (a space's choices)."""
    value = sequence(value, name, "integers >= 1")
    bad = [v for v in value if not _is_int(v) or v < 1]
    if not value or bad or len(set(value)) != len(value):
        raise ValueError(
            f"`{name}` must list distinct integers >= 1, at least one. "
            f"Received: {name}={list(value)}"
        )
    return tuple(int(v) for v in value)
