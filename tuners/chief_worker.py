"""KerasTuner chief/worker mode, made to ride out a chief restart.

In KerasTuner's distributed mode (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT`) a worker's tuner talks to the chief's oracle through an
`OracleClient` over gRPC. `ReconnectingClient` wraps that client; `tuners.NASTuner` wraps its
oracle with it on every worker, so a worker whose chief is killed waits for the restarted chief
and carries on. See docs/distributed.md.
"""

import logging
import os
import time

__all__ = ["ReconnectingClient", "is_worker"]


def is_worker():
    """Whether this process is a KerasTuner worker (a chief oracle is set, and this is not it)."""
    return "KERASTUNER_ORACLE_IP" in os.environ and not os.environ.get(
        "KERASTUNER_TUNER_ID", "").startswith("chief")


class ReconnectingClient:
    """Wraps a worker's KerasTuner `OracleClient`: a call that fails because the chief is gone
    (gRPC `UNAVAILABLE`: the chief died while it was being answered) is sent again. The calls
    wait for the chief to be back (KerasTuner sends them with `wait_for_ready=True`), and
    sending one again is safe: `create_trial` gives a worker its running trial back, and the
    oracle ignores a second `end_trial` of a trial.

    A worker gives up, with a one-line message, after `give_up_s` seconds without a chief.
    """

    def __init__(self, client, give_up_s=300.0):
        self._client = client
        self._give_up_s = give_up_s

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            import grpc

            deadline = time.monotonic() + self._give_up_s
            while True:
                try:
                    return attr(*args, **kwargs)
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    if time.monotonic() > deadline:
                        raise SystemExit(
                            f"The chief oracle has been unreachable for {self._give_up_s:.0f} "
                            f"s ({name}); restart this worker once the chief is back."
                        ) from None
                    logging.warning("The chief oracle is unreachable (%s); calling again.", name)
                    time.sleep(0.2)

        return call
