"""Helpers the backends share to export ONNX: silencing exporters, checking the result.

:func:`quiet` mutes what torch.onnx, tf2onnx and skl2onnx print, warn and log;
:func:`verify_onnx` runs an exported file with ONNX Runtime and deletes it (with a note
saying why) when its scores differ from the trained model's. :mod:`.models` re-exports
both; ONNX Runtime is imported only when a file is verified.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["quiet", "verify_onnx"]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence exporters (torch.onnx, tf2onnx, skl2onnx): prints, warnings, logging."""
    level = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(level)


def verify_onnx(
    path: Path, rows: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], notes: list[str]
) -> bool:
    """ONNX Runtime's ``score`` for ``rows`` must equal ``expected`` within 1e-5.

    On a mismatch the file is deleted and a note says why.
    """
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = np.asarray(session.run(["score"], {"x": rows})[0])
    except Exception as err:
        path.unlink(missing_ok=True)
        notes.append(
            f"onnx: ONNX Runtime cannot run the exported model ({type(err).__name__}: "
            f"{str(err)[:200]}); the bundle has the native model only"
        )
        return False
    if got.shape == expected.shape and np.allclose(got, expected, rtol=1e-5, atol=1e-5):
        return True
    same = got.shape == expected.shape
    diff = float(np.max(np.abs(got - expected))) if same and got.size else float("nan")
    path.unlink(missing_ok=True)
    notes.append(
        f"onnx: the exported model differs from the trained one (shape {got.shape} "
        f"vs {expected.shape}, max |diff| {diff:.3g}); the bundle has the native "
        "model only"
    )
    return False
