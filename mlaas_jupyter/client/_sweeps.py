"""The sweep methods of :class:`~mlaas_jupyter.client.Client` (a base class of it).

A sweep is a group of training jobs searched by Optuna; its record (trials with their
parameters, states and values, the counts, the best trial and its registered model)
is what ``GET sweeps/{id}`` replies, on both transports.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..specs.training import TrainSpec

if TYPE_CHECKING:
    from ._http import HttpTransport
    from ._in_process import InProcessTransport

__all__ = ["SweepsMixin"]

_ENDED = frozenset({"succeeded", "failed", "cancelled", "lost"})


class SweepsMixin:
    """Submit, list, follow, cancel and delete sweeps."""

    _transport: HttpTransport | InProcessTransport

    def submit_sweep(
        self,
        spec: Mapping[str, Any] | str | Path | TrainSpec,
        params: Mapping[str, str | list[Any]],
        trials: int | None = None,
        parallel: int = 1,
        sampler: str = "tpe",
        metric: str | None = None,
        direction: str | None = None,
        prune: bool = True,
        executor: str | None = None,
        name: str | None = None,
        seed: int | None = None,
        *,
        kernel_name: str | None = None,
        register: bool = True,
    ) -> dict[str, Any]:
        """Start a sweep of ``spec`` (a mapping, a ``TrainSpec`` or a YAML/JSON file,
        read here) over ``params``: dotted spec paths to choices (``"64,128"`` or a
        list) or ranges (``"loguniform:1e-4:1e-2"``, ``"int:2:8"``...). ``trials``
        defaults to the grid size when every parameter is a list of choices, else 10.
        Returns the sweep's record (``state`` running)."""
        if isinstance(spec, str | Path):
            spec = TrainSpec.from_file(spec)
        body = {
            "spec": spec.to_dict() if isinstance(spec, TrainSpec) else dict(spec),
            "params": {path: form for path, form in params.items()},
            "trials": trials,
            "parallel": parallel,
            "sampler": sampler,
            "metric": metric,
            "direction": direction,
            "prune": prune,
            "seed": seed,
            "executor": executor,
            "kernel_name": kernel_name,
            "name": name,
            "register": register,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return dict(self._transport.call("submit_sweep", body=body))

    def sweeps(self) -> list[dict[str, Any]]:
        """Every sweep's record, newest first."""
        return list(self._transport.call("list_sweeps")["sweeps"])

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        """One sweep's record: trials, counts, best trial, error."""
        return dict(self._transport.call("get_sweep", {"sweep_id": sweep_id}))

    def cancel_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Cancel a running sweep and its queued and running trials; its record."""
        return dict(self._transport.call("cancel_sweep", {"sweep_id": sweep_id}))

    def resume_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Continue a lost sweep (its server stopped) with its remaining trials."""
        return dict(self._transport.call("resume_sweep", {"sweep_id": sweep_id}))

    def delete_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Remove a finished sweep's record (its trials stay as jobs)."""
        return dict(self._transport.call("delete_sweep", {"sweep_id": sweep_id}))

    def wait_sweep(
        self, sweep_id: str, timeout: float | None = None, poll: float = 1.0
    ) -> dict[str, Any]:
        """Block until the sweep ends; its record. ``TimeoutError`` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.sweep(sweep_id)
            if record["state"] in _ENDED:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"sweep {sweep_id} is still {record['state']} after {timeout} s")
            left = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            time.sleep(left)
