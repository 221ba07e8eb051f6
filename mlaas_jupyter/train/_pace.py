"""The pace of a training run from its events: throughput and the time left.

Epoch events carry ``epoch``, ``epochs``, ``seconds`` and ``events_per_s``; the
throttled progress events of the epoch under way carry ``epoch``, ``batch``,
``batches``, ``events`` and ``events_per_s`` (the mean rate of that epoch so far). The
time left is the epochs still to run, less the done fraction of the current one, times
the mean duration of the epochs done (validation included); during the first epoch,
when none is done, the duration is extrapolated from its progress so far.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Pace", "duration_text", "training_pace"]


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def duration_text(seconds: float) -> str:
    """``42 s``, ``2 min 05 s``, ``1 h 02 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


@dataclass(frozen=True)
class Pace:
    """Where a run stands and how fast it goes.

    Attributes
    ----------
    epoch
        The epoch under way (1-based), or the last one done once none is left.
    epochs
        The epochs the run will train at most (early stopping may end it sooner).
    fraction
        The done fraction of the epoch under way (batches done / batches).
    events_per_s
        The latest throughput reported (events per second).
    epoch_seconds
        The estimated duration of one epoch.
    seconds_left
        The estimated time to the last epoch's end; None while unknown.
    """

    epoch: int | None = None
    epochs: int | None = None
    fraction: float = 0.0
    events_per_s: float | None = None
    epoch_seconds: float | None = None
    seconds_left: float | None = None

    def text(self, *, running: bool = True) -> str:
        """One line for the monitor: ``epoch 2/5 · 12,345 events/s · 37 s left``; no
        time left once the run is not ``running`` or its epochs are all done (the test
        and the bundle may still take a moment)."""
        parts = []
        if self.epoch:
            parts.append(f"epoch {self.epoch}" + (f"/{self.epochs}" if self.epochs else ""))
        if self.events_per_s:
            parts.append(f"{self.events_per_s:,.0f} events/s")
        if running and self.seconds_left:
            parts.append(f"{duration_text(self.seconds_left)} left")
        return " · ".join(parts)


def training_pace(events: Iterable[Mapping[str, Any]], epochs: int | None = None) -> Pace:
    """The :class:`Pace` after ``events`` (a run's events in order, of any type; those
    of type ``epoch``, ``progress`` and ``early_stop`` count). ``epochs`` is the run's
    planned number of epochs, used until an epoch event tells it."""
    done, total = 0, epochs
    durations: list[float] = []
    rate: float | None = None
    current: Mapping[str, Any] | None = None  # the last progress event
    for event in events:
        kind = event.get("type")
        if kind == "epoch":
            done = max(done, int(event.get("epoch") or 0))
            seconds = _number(event.get("seconds"))
            if seconds is not None:
                durations.append(seconds)
            planned = _number(event.get("epochs"))
            total = int(planned) if planned else total
            rate = _number(event.get("events_per_s")) or rate
        elif kind == "progress":
            current = event
            rate = _number(event.get("events_per_s")) or rate
        elif kind == "early_stop":
            total = done  # nothing more to train
    fraction, extrapolated = 0.0, None
    if current is not None and int(current.get("epoch") or 0) <= done:
        current = None  # the progress of an epoch that has ended since
    if current is not None:
        batch, batches = _number(current.get("batch")), _number(current.get("batches"))
        if batch and batches:
            fraction = min(1.0, batch / batches)
        seen, seen_rate = _number(current.get("events")), _number(current.get("events_per_s"))
        if fraction and seen and seen_rate:
            extrapolated = seen / seen_rate / fraction  # the epoch's seconds so far / fraction
    epoch_seconds = sum(durations) / len(durations) if durations else extrapolated
    left = None
    if total is not None and epoch_seconds is not None:
        left = max(0.0, total - done - fraction) * epoch_seconds
    elif total is not None and done >= total:
        left = 0.0
    if current is not None:
        epoch: int | None = int(current["epoch"])
    elif total is not None and done < total:
        epoch = done + 1  # the next epoch is under way, no progress reported yet
    else:
        epoch = done or None
    return Pace(
        epoch=epoch,
        epochs=total,
        fraction=fraction,
        events_per_s=rate,
        epoch_seconds=epoch_seconds,
        seconds_left=left,
    )
