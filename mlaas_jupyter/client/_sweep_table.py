"""`SweepTable`: a sweep's record as a short text table (notebooks show ``SweepView``).

What ``mlaas sweep`` and ``mlaas sweeps show`` print: a head line (name,
state, counts, best trial) and one row per trial with its parameters and value.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SweepTable", "trial_line"]


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else ""


def _params(params: dict[str, Any]) -> str:
    return " ".join(
        f"{path}={value:.4g}" if isinstance(value, float) else f"{path}={value}"
        for path, value in params.items()
    )


def trial_line(record: dict[str, Any], trial: dict[str, Any]) -> str:
    """One finished trial in words: ``trial 3 (job ID): succeeded  val_auc 0.95  p=v``."""
    value = _value(trial.get("value"))
    shown = f"  {record['metric']} {value}" if value else ""
    error = f"  ({trial['error']})" if trial.get("error") and trial["state"] == "failed" else ""
    return (
        f"trial {trial['number']} (job {trial.get('job_id') or '-'}): {trial['state']}"
        f"{shown}  {_params(trial.get('params') or {})}{error}"
    )


class SweepTable:
    """One sweep's record (``.record``) shown as a table of its trials."""

    columns = ("trial", "job", "state", "epoch", "value")

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        paths = list((record.get("request") or {}).get("params") or {})
        self.paths = paths
        self.rows = [
            (
                str(t["number"]),
                t.get("job_id") or "",
                t["state"],
                "" if t.get("epoch") is None else str(t["epoch"]),
                _value(t.get("value")),
                *(_cell((t.get("params") or {}).get(p)) for p in paths),
            )
            for t in record.get("trials", [])
        ]

    @property
    def head(self) -> str:
        r = self.record
        counts = r.get("counts") or {}
        tally = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        line = (
            f"sweep {r['id']} ({r['name']}): {r['state']}, {len(r.get('trials', []))}/"
            f"{r['trials_total']} trials ({tally or 'none yet'}); {r['direction']} {r['metric']}"
        )
        best = r.get("best")
        if best:
            model = f" -> model {best['model']} v{best['version']}" if best.get("model") else ""
            line += f"\nbest: trial {best['number']} {r['metric']} {_value(best['value'])}{model}"
        if r.get("error"):
            line += f"\nerror: {r['error']}"
        return line

    def __repr__(self) -> str:
        table = [(*self.columns, *self.paths), *self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
        return self.head + "\n" + "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
