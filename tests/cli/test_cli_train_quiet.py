"""``mlaas train`` with a Keras model prints no TensorFlow start-up lines unless asked.

Issue 19, item 9. The command runs in a subprocess with a clean environment (neither
``TF_CPP_MIN_LOG_LEVEL`` nor ``TF_ENABLE_ONEDNN_OPTS`` set), as a user's shell has it;
``--verbose`` lets TensorFlow's lines through. The scores do not depend on it (no
kernel option is changed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlaas_jupyter.examples import write_example_dataset

#: what TensorFlow's native code writes while it loads (absl's preamble, its
#: ``I0000 ... port.cc:153] oneDNN custom operations are on`` line and others alike)
STARTUP = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|cpu_feature_guard|"
    r"^[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+\.cc:\d+\]",
    re.MULTILINE,
)


def _train(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "MLAAS_VERBOSE")
    }
    env["MLAAS_CACHE_DIR"] = str(folder / "cache")
    command = [sys.executable, "-m", "mlaas_jupyter", "train", str(folder / "data/train.yaml")]
    return subprocess.run(
        [*command, "--run-dir", str(folder / "run"), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_keras_training_is_quiet_unless_verbose(tmp_path: Path) -> None:
    spec = write_example_dataset(tmp_path / "data", events_per_file=300, files_per_class=1)
    training = {
        "dataset": yaml.safe_load(spec.read_text()),
        "model": {"name": "mlp", "backend": "keras", "params": {"sizes": [8]}},
        "training": {"epochs": 1, "batch_size": 128},
    }
    (tmp_path / "data/train.yaml").write_text(yaml.safe_dump(training))

    quiet = _train(tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    output = quiet.stdout + quiet.stderr
    assert STARTUP.findall(output) == [], output
    assert "model: {'backend': 'keras'" in quiet.stderr
    assert "bundle: " in quiet.stdout

    verbose = _train(tmp_path, "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert STARTUP.search(verbose.stdout + verbose.stderr), verbose.stderr
    # the same numbers either way: only what is printed changes
    metrics = [line for line in quiet.stdout.splitlines() if line.startswith("test metrics")]
    assert metrics == [
        line for line in verbose.stdout.splitlines() if line.startswith("test metrics")
    ]
