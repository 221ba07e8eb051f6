"""The sweep operations of the operation table (:mod:`.routes` makes them Routes).

Kept beside the table, as the keyword arguments of their :class:`~.routes.Route`, so
that the table stays one readable file; each ``run`` calls ``core.sweeps``.
"""

from __future__ import annotations

from typing import Any

from ..specs.sweep import SweepRequest

__all__ = ["SWEEP_OPERATIONS"]

SWEEP_OPERATIONS: list[dict[str, Any]] = [
    {
        "name": "submit_sweep",
        "method": "POST",
        "path": "sweeps",
        "summary": "Start a hyperparameter sweep: a group of training jobs searched by Optuna",
        "run": lambda core, c: core.sweeps.submit(c.body),
        "tag": "sweeps",
        "body": SweepRequest,
        "status": 201,
        "errors": (400, 403),
    },
    {
        "name": "list_sweeps",
        "method": "GET",
        "path": "sweeps",
        "summary": "The sweeps, newest first",
        "run": lambda core, c: core.sweeps.list(),
        "tag": "sweeps",
    },
    {
        "name": "get_sweep",
        "method": "GET",
        "path": "sweeps/{sweep_id}",
        "summary": "One sweep: its trials, their parameters and metrics, the best trial",
        "run": lambda core, c: core.sweeps.get(c.params["sweep_id"]),
        "tag": "sweeps",
        "errors": (404,),
    },
    {
        "name": "cancel_sweep",
        "method": "POST",
        "path": "sweeps/{sweep_id}/cancel",
        "summary": "Cancel a running sweep and its queued and running trials",
        "run": lambda core, c: core.sweeps.cancel(c.params["sweep_id"]),
        "tag": "sweeps",
        "errors": (404, 409),
    },
    {
        "name": "resume_sweep",
        "method": "POST",
        "path": "sweeps/{sweep_id}/resume",
        "summary": "Continue a lost sweep with its remaining trials (finished ones are kept)",
        "run": lambda core, c: core.sweeps.resume(c.params["sweep_id"]),
        "tag": "sweeps",
        "errors": (400, 403, 404, 409),
    },
    {
        "name": "delete_sweep",
        "method": "DELETE",
        "path": "sweeps/{sweep_id}",
        "summary": "Remove a finished sweep's record (its trials stay as jobs; 409 while running)",
        "run": lambda core, c: core.sweeps.delete(c.params["sweep_id"]),
        "tag": "sweeps",
        "errors": (404, 409),
    },
]
