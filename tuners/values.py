"""Reading hyperparameter values back, shared by the search spaces' `decode`."""

import keras_tuner


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
