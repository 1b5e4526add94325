"""A KerasTuner search space as a sequence of categorical decisions.

`ControllerOracle` and `EvolutionOracle` (`tuners.reward_oracle.RewardOracle`s) see a space
of `Choice`, `Boolean`, `Fixed`, stepped `Int` and stepped `Float` hyperparameters the same
way: each tunable one is a decision among a finite tuple of values (`decision_values`), a
configuration is one index per decision (`index_of`), and when a draw was tried already the
untried configurations nearest to it are found ring by ring (`nearest_untried`), without
listing the space (`space_size` counts it).
"""

import itertools
import math

from keras_tuner.engine import hyperparameters as hp_module

__all__ = ["MAX_CHOICES", "decision_values", "index_of", "nearest_untried", "space_size"]

MAX_CHOICES = 1024  # Larger heads mean an unstepped numeric range; refuse rather than guess.


def _hp_kind(hp):
    return type(hp).__name__


def decision_values(hp, oracle="ControllerOracle"):
    """The values a tunable hyperparameter can take, as a tuple, or `None` for `Fixed`.

    Args:
        hp: a KerasTuner hyperparameter.
        oracle: str, the name of the oracle that asks, for the error messages.

    Returns:
        A tuple of values (the decision's choices, in order), or `None` when `hp` is not a
        decision (`Fixed`).

    Example:

    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> _ = hp.Int("filters", 16, 64, step=16), hp.Fixed("kernel", 3)
    >>> [decision_values(h) for h in hp.space]
    [(16, 32, 48, 64), None]

    Raises:
        ValueError: for a hyperparameter that is not a finite decision (a `Float` or log-sampled
            `Int` without `step`, more than `MAX_CHOICES` values, a conditional one, or an
            unknown type).
    """
    if hp.conditions:
        raise ValueError(
            f"{oracle} does not support conditional hyperparameters (declared inside "
            "`hp.conditional_scope`): the controller emits one fixed sequence of decisions. "
            f"Received: {hp!r} with conditions {hp.conditions}"
        )
    if isinstance(hp, hp_module.Fixed):
        return None
    if isinstance(hp, hp_module.Boolean):
        return (False, True)
    if isinstance(hp, hp_module.Choice):
        values = tuple(hp.values)
    elif isinstance(hp, (hp_module.Int, hp_module.Float)):
        if hp.step is None:
            raise ValueError(
                f"{oracle} needs a finite set of values; {_hp_kind(hp)} "
                f"'{hp.name}' has no `step`. Accepted: Choice, Boolean, Fixed, Int (linear, or "
                f"log/reverse_log with a step) and Float with a step. Received: {hp!r}"
            )
        # A stepped range's `values` is lazy: read one past the limit, never the whole range.
        values = tuple(itertools.islice(hp.values, MAX_CHOICES + 1))
        if len(values) > MAX_CHOICES:
            raise ValueError(
                f"{_hp_kind(hp)} '{hp.name}' has more than {MAX_CHOICES} values; "
                f"{oracle} accepts at most {MAX_CHOICES} per hyperparameter (use a "
                f"larger `step`). Received: {hp!r}"
            )
        if isinstance(hp, hp_module.Int):
            values = tuple(dict.fromkeys(int(round(v)) for v in values))
        else:
            values = tuple(float(v) for v in values)
    else:
        raise ValueError(
            f"{oracle} supports Choice, Boolean, Fixed, stepped Int and stepped Float "
            f"hyperparameters. Received: {hp!r} of type {_hp_kind(hp)}"
        )
    if len(values) > MAX_CHOICES:
        raise ValueError(
            f"{_hp_kind(hp)} '{hp.name}' has {len(values)} values; {oracle} accepts at "
            f"most {MAX_CHOICES} per hyperparameter. Received: {hp!r}"
        )
    return values


def index_of(options, value):
    """The index of `value` among a decision's `options` (same type first, then `==`), or
    `None` when it is not one of them.

    Example:

    >>> index_of((0, 1, 2), 2), index_of((False, True), 1), index_of(("a",), "b")
    (2, 1, None)
    """
    for i, option in enumerate(options):
        if type(option) is type(value) and option == value:
            return i
    for i, option in enumerate(options):
        if option == value:
            return i
    return None


def space_size(num_choices):
    """How many configurations a sequence of decisions has: the product of their numbers of
    choices, as an exact Python int (never enumerated).

    Example:

    >>> space_size([3, 2, 5]), space_size([8] * 40) == 8**40, space_size([])
    (30, True, 1)
    """
    return math.prod(int(k) for k in num_choices)


def nearest_untried(start, num_choices, is_untried):
    """The untried configurations nearest to `start`, fewest decisions changed first.

    Searches rings of growing Hamming distance around `start` (itself, then every change of
    one decision, then of two, ...) and returns the first ring's configurations for which
    `is_untried` holds, in a fixed order. A ring is only built once every configuration of
    the one before was tried, so the work is bounded by the tried configurations near
    `start`; only when nearly all of a small space is tried does it cover the whole space.

    Args:
        start: a sequence of decision indices.
        num_choices: the number of choices of each decision.
        is_untried: callable `tuple of indices -> bool`.

    Returns:
        A list of tuples of decision indices; empty when every configuration is tried.

    Example:

    >>> tried = {(0, 0), (0, 1), (1, 0)}
    >>> nearest_untried((0, 0), [2, 3], lambda d: d not in tried)
    [(0, 2)]
    >>> nearest_untried((0, 0), [2, 2], lambda d: d not in tried)
    [(1, 1)]
    """
    start = tuple(int(d) for d in start)
    if is_untried(start):
        return [start]
    seen, ring = {start}, [start]
    while ring:
        outer = []
        for config in ring:
            for i, k in enumerate(num_choices):
                for choice in range(int(k)):
                    if choice == config[i]:
                        continue
                    neighbour = config[:i] + (choice,) + config[i + 1 :]
                    if neighbour not in seen:
                        seen.add(neighbour)
                        outer.append(neighbour)
        found = [config for config in outer if is_untried(config)]
        if found:
            return found
        ring = outer
    return []
