"""TensorFlow loaded without its start-up lines, unless verbose.

Importing TensorFlow (through Keras) makes its native code write lines such as
``WARNING: All log messages before absl::InitializeLog() is called are written to
STDERR`` and ``I0000 ... port.cc:153] oneDNN custom operations are on...`` straight to
file descriptor 2. ``TF_CPP_MIN_LOG_LEVEL`` does not reach them (absl logs them
before TensorFlow reads it), and ``TF_ENABLE_ONEDNN_OPTS=0`` would silence the oneDNN
line only by changing the kernels, hence the numbers. So :func:`import_keras` holds
what is written to descriptor 2 while TensorFlow loads and writes back every line but
those informational start-up lines (errors stay). It also sets
``TF_CPP_MIN_LOG_LEVEL=2`` (unless set) and absl's Python logging to errors.

With ``MLAAS_VERBOSE=1`` (``mlaas train --verbose``) nothing is held or changed.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

__all__ = ["VERBOSE_ENV", "import_keras", "is_verbose", "startup_filtered"]

#: the environment variable that keeps TensorFlow's start-up lines (``1``)
VERBOSE_ENV = "MLAAS_VERBOSE"

#: TensorFlow's informational and warning start-up lines on descriptor 2: absl's
#: preamble, ``I``/``W`` lines in absl's format (``I0000 00:00:17.96 25874 port.cc:153]``)
#: and the continuation of cpu_feature_guard's line
_STARTUP = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\] .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\."
)


def is_verbose() -> bool:
    """Whether TensorFlow may print its start-up lines (``MLAAS_VERBOSE`` set, not 0)."""
    return os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0")


@contextlib.contextmanager
def startup_filtered() -> Iterator[None]:
    """While inside, hold what is written to descriptor 2; on exit write it back to
    ``sys.stderr`` but for TensorFlow's start-up lines. Nothing is held when verbose
    or when descriptor 2 cannot be duplicated (no stderr)."""
    if is_verbose():
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as held:
        _flush()
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace")
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not _STARTUP.fullmatch(line.rstrip("\r\n"))
            ]
            if kept:
                sys.stderr.write("".join(kept))
                _flush()


def _flush() -> None:
    with contextlib.suppress(Exception):  # a closed or odd stderr: nothing to flush
        sys.stderr.flush()


def import_keras() -> ModuleType:
    """``keras`` on the TensorFlow backend (unless ``KERAS_BACKEND`` says otherwise),
    imported without TensorFlow's start-up lines unless verbose."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    verbose = is_verbose()
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with startup_filtered():
        import keras  # noqa: F401  (loaded here, returned from sys.modules)
    if not verbose:
        with contextlib.suppress(ImportError):  # absl comes with TensorFlow
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
    return sys.modules["keras"]
