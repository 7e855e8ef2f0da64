"""--strategy multiworker: two worker processes on this machine train one run together."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHORALES = ROOT / "data" / "chorales"

WORKER = """
import json, sys
import numpy as np
from musicutils import train
result = train.train(
    sys.argv[1], sys.argv[2], epochs=2, strategy="multiworker", validation_split=0.0,
    steps_per_epoch=3, batch_size=4, segment_length=16, time_sizes=(16,), note_sizes=(8,),
    learning_rate=0.01, verbose=0,
)
weights = [np.asarray(w, np.float64).ravel().tolist() for w in result.model.get_weights()]
print("RESULT " + json.dumps({"weights": weights, "run_dir": str(result.run_dir),
                              "epochs": result.epochs_completed}))
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_one_run(tmp_path):
    """Both workers end with the same weights; only the chief (worker 0) writes the run folder,
    complete; the other one's temporary folder is gone when it exits."""
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    run_dir = tmp_path / "run"
    workers = []
    for index in range(2):
        config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CONFIG=json.dumps(config))
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(CHORALES), str(run_dir)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err[-3000:]
            line = [row for row in out.splitlines() if row.startswith("RESULT ")][-1]
            results.append(json.loads(line[len("RESULT ") :]))
    finally:
        for worker in workers:
            worker.kill()

    chief, other = results
    assert chief["epochs"] == other["epochs"] == 2
    for a, b in zip(chief["weights"], other["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert chief["run_dir"] == str(run_dir)
    assert other["run_dir"] != str(run_dir) and not Path(other["run_dir"]).exists()

    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "model.weights.h5", "train.json", "log.csv", "backup"} <= names
    assert json.loads((run_dir / "train.json").read_text())["strategy"] == "multiworker"
    assert json.loads((run_dir / "backup" / "state.json").read_text())["epoch"] == 2
    assert len((run_dir / "log.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    # the chief's saved model is the weights both workers ended with (no validation: the last)
    from musicutils.model import load_model

    saved = [w.ravel() for w in load_model(run_dir).get_weights()]
    for a, b in zip(saved, chief["weights"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_multiworker_needs_tf_config(monkeypatch, tmp_path):
    from musicutils import train
    from musicutils.errors import DataError

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(train, "_MULTIWORKER", None)
    with pytest.raises(DataError, match="TF_CONFIG"):
        train.make_strategy("multiworker")
