"""The Optuna side of a sweep: its study, the trials' parameters, and its record's sums.

Optuna is used through its ask/tell interface with an in-memory study: the sweep's
driver (:mod:`._sweeps`) asks for trials, runs each as a job, reports the epoch
metrics to the pruner and tells the result. What survives a restart is the sweep's
record in the job store, not the study; :func:`rebuild_study` makes a new study from
the finished trials of a record (to continue a lost sweep).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from ..specs.sweep import Param

if TYPE_CHECKING:
    import optuna

__all__ = [
    "TRIAL_STATES",
    "counts",
    "distributions",
    "make_study",
    "quiet_optuna",
    "rebuild_study",
]

#: the states of a trial that has run to its end (a resumed sweep does not run it again)
_FINISHED = ("succeeded", "pruned", "failed")
#: the states of a trial in the sweep's record
TRIAL_STATES = ("queued", "running", "succeeded", "pruned", "failed", "cancelled", "lost")


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines and its ExperimentalWarnings (TPE's constant liar, ...) are
    noise in a server's log and errors under warnings-as-errors: silence them."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def distributions(params: list[Param]) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna's distribution of each parameter, by its dotted path."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    found: dict[str, optuna.distributions.BaseDistribution] = {}
    for p in params:
        if p.kind == "choice":
            found[p.path] = CategoricalDistribution(list(p.choices))
        elif p.kind in ("int", "logint"):
            found[p.path] = IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            found[p.path] = FloatDistribution(p.low, p.high, log=p.log)
    return found


def make_study(
    sampler: str,
    params: list[Param],
    direction: Literal["minimize", "maximize"],
    seed: int | None,
    prune: bool,
    startup_trials: int,
    warmup_epochs: int,
) -> optuna.Study:
    """An in-memory study with the sweep's sampler and (``prune``) a MedianPruner
    that waits for ``startup_trials`` finished trials and ``warmup_epochs`` epochs."""
    import optuna

    with quiet_optuna():
        if sampler == "grid":
            space = {p.path: list(p.choices) for p in params}
            chosen: optuna.samplers.BaseSampler = _grid_sampler()(space, seed=seed)
        elif sampler == "random":
            chosen = optuna.samplers.RandomSampler(seed=seed)
        else:
            chosen = optuna.samplers.TPESampler(seed=seed)
        pruner: optuna.pruners.BasePruner = (
            optuna.pruners.MedianPruner(
                n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs
            )
            if prune
            else optuna.pruners.NopPruner()
        )
        return optuna.create_study(sampler=chosen, pruner=pruner, direction=direction)


def _grid_sampler() -> type[optuna.samplers.GridSampler]:
    """GridSampler without its ``study.stop()`` once the grid is covered: that works
    inside ``study.optimize`` only, and the driver stops after the grid's size anyway."""
    import optuna

    class AskTellGridSampler(optuna.samplers.GridSampler):
        def after_trial(self, *args: Any, **kwargs: Any) -> None:
            pass

    return AskTellGridSampler


def rebuild_study(
    study: optuna.Study, record: Mapping[str, Any], params: list[Param], grid: bool = False
) -> int:
    """Add the finished trials of a sweep's record to a new ``study`` (succeeded ones
    with their value, pruned ones with their reported epochs) and, for a ``grid``,
    queue the points not finished yet; returns how many trials had finished
    (succeeded, pruned or failed: those are not run again)."""
    import optuna
    from optuna.trial import TrialState

    space = distributions(params)
    finished = [t for t in record.get("trials", []) if t["state"] in _FINISHED]
    with quiet_optuna():
        for trial in finished:
            values = trial.get("params") or {}
            if set(values) != set(space):
                continue
            if trial["state"] == "succeeded" and _finite(trial.get("value")):
                state, value = TrialState.COMPLETE, float(trial["value"])
            elif trial["state"] == "pruned":
                state, value = TrialState.PRUNED, None
            else:
                state, value = TrialState.FAIL, None
            steps = trial.get("intermediate") or {}
            study.add_trial(
                optuna.trial.create_trial(
                    state=state,
                    value=value,
                    params=dict(values),
                    distributions=space,
                    intermediate_values={int(k): float(v) for k, v in steps.items()},
                )
            )
        if grid:  # trials added here carry no grid point: queue the points left instead
            done = [tuple((t.get("params") or {}).get(p.path) for p in params) for t in finished]
            for point in itertools.product(*(p.choices for p in params)):
                if point not in done:
                    study.enqueue_trial(dict(zip((p.path for p in params), point, strict=True)))
    return len(finished)


def counts(trials: list[Mapping[str, Any]]) -> dict[str, int]:
    """How many trials are done (succeeded), running, queued, pruned, failed (failed
    or lost) and cancelled."""
    tally = dict.fromkeys(("done", "running", "queued", "pruned", "failed", "cancelled"), 0)
    names = {"succeeded": "done", "lost": "failed"}
    for trial in trials:
        tally[names.get(trial["state"], trial["state"])] += 1
    return tally


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
