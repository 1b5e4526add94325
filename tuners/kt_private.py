"""The private KerasTuner members the library relies on, each with why (one list, checked).

KerasTuner's underscore names may change in any release without notice. The library keeps to
the public API except for the few members below, which it cannot do without: the override
points KerasTuner offers only under private names, and the oracle state that a subclass of
`keras_tuner.Oracle` must read and amend to hand trials on and to write its files whole.

`tests/test_public_api.py` parses `nasnet_tf/` and `tuners/` and fails when the library uses a
private KerasTuner member that is not listed here, when a listed member no longer exists on the
installed KerasTuner, when an overridden hook is no longer called where `called_by` says, when
an entry here is no longer used, or on any import of `keras.src` / `keras_tuner.src`. Checked
against keras-tuner `VERSION_CHECKED`; on an upgrade, read each entry's KerasTuner source again.
"""

import collections

VERSION_CHECKED = "1.4.8"

PrivateMember = collections.namedtuple("PrivateMember", "owner name kind why called_by")
PrivateMember.__doc__ = """One private KerasTuner member the library uses.

owner: the public KerasTuner class it is found on (`Oracle` or `Tuner`, in `keras_tuner`),
    itself or through a base class.
name: the member's name.
kind: "read" (used as KerasTuner defines it), "override" (the library replaces it: KerasTuner
    must keep calling it, from each method named in `called_by`).
why: why the library needs it.
called_by: for an override, the KerasTuner methods (`Class.method`, `Class` being `owner` or
    one of its bases) that call it.
"""

PRIVATE_MEMBERS = (
    PrivateMember(
        "Oracle", "_retry_queue", "read",
        "The trials KerasTuner hands out again before drawing new ones. "
        "`TrialLeaseMixin` (trial_leases.py) re-queues the trials a dead worker held "
        "(`trial_lease`) and waits while it is not empty; `CheckedStateMixin` "
        "(state_files.py) re-queues those found RUNNING at reload. KerasTuner has no public "
        "way to queue a trial for retry.",
        (),
    ),
    PrivateMember(
        "Oracle", "_project_dir", "read",
        "The oracle's project folder (a property): where the oracle's state files, their "
        "previous versions and the controller's weights (controller_oracle.py) are written. "
        "The public `project_dir` exists only on the tuner, and the oracle writes without one.",
        (),
    ),
    PrivateMember(
        "Oracle", "_get_oracle_fname", "read",
        "The path of `oracle.json`: `CheckedStateMixin` (state_files.py) writes and reloads "
        "it whole, with a checksum and the previous version kept, at the path KerasTuner "
        "reads.",
        (),
    ),
    PrivateMember(
        "Oracle", "_get_trial_dir", "read",
        "A trial's folder (creating it), where `_save_trial` writes `trial.json`.",
        (),
    ),
    PrivateMember(
        "Oracle", "_save_trial", "override",
        "KerasTuner writes `trial.json` in place; a kill mid-write left a file `reload` cannot "
        "parse. `CheckedStateMixin._save_trial` (state_files.py) writes it whole.",
        ("Oracle.create_trial", "Oracle.update_trial", "Oracle.end_trial"),
    ),
    PrivateMember(
        "Tuner", "_build_and_fit_model", "override",
        "KerasTuner's hook for one execution of a trial, inside `run_trial` after its reporting "
        "and checkpoint callbacks are added: `NASTuner` hands the trial to its performance "
        "estimator there (weight sharing never builds the child).",
        ("Tuner.run_trial",),
    ),
    PrivateMember(
        "Tuner", "_populate_initial_space", "override",
        "Called by `BaseTuner.__init__` to discover the search space; KerasTuner's default "
        "builds one child model for it (about 10 s under JAX). `NASTuner` declares the space "
        "directly.",
        ("BaseTuner.__init__",),
    ),
    PrivateMember(
        "Tuner", "_try_build", "read",
        "Builds a trial's child model as KerasTuner does (clearing the session, checking that "
        "a Keras model came back and its size against `max_model_size`); `NASTuner` calls it "
        "lazily from `_build_and_fit_model`, only for estimators that train the child "
        "standalone.",
        (),
    ),
    PrivateMember(
        "Tuner", "_is_worker", "read",
        "Whether this process is a worker of a distributed search (holds an oracle client): "
        "`NASTuner` then leaves the oracle's and the estimator's files to the chief.",
        (),
    ),
    PrivateMember(
        "Tuner", "_get_tuner_fname", "read",
        "The path of `tuner0.json`: `NASTuner.save` writes it whole and `reload` reads it with "
        "a check, at the path KerasTuner's own `__init__` tests to decide to reload.",
        (),
    ),
)

NAMES = tuple(member.name for member in PRIVATE_MEMBERS)
