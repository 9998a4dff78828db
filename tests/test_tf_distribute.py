"""MultiTaskFaceClassifier under tf.distribute: two worker processes on 127.0.0.1 train with
MultiWorkerMirroredStrategy (configured by TF_CONFIG) as one process does."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fit_toy(multi_worker):
    """Fit the toy task (under MultiWorkerMirroredStrategy when ``multi_worker``); the
    test score, the replicas in sync and the first test probabilities."""
    import tensorflow as tf

    from mtlfaces import MultiTaskFaceClassifier
    from mtlfaces.datasets import make_shapes

    X, y = make_shapes(400, seed=0)
    X_test, y_test = make_shapes(200, seed=1, missing_gender=0.0)
    params = dict(image_size=32, filters=(8, 16), dense_units=(32,), dropout=0.0,
                  batch_size=32, augment=False, validation_fraction=0.0, random_state=0,
                  epochs=6)
    if multi_worker:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        with strategy.scope():
            clf = MultiTaskFaceClassifier(**params).fit(X, y)
        replicas = strategy.num_replicas_in_sync
    else:
        clf, replicas = MultiTaskFaceClassifier(**params).fit(X, y), 1
    return {"score": clf.score(X_test, y_test), "replicas": replicas,
            "proba": [p[:20].round(5).tolist() for p in clf.predict_proba(X_test)]}


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _worker(index, hosts):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_NUM_INTRAOP_THREADS": "1",
           "TF_NUM_INTEROP_THREADS": "1",
           "TF_CONFIG": json.dumps({"cluster": {"worker": hosts},
                                    "task": {"type": "worker", "index": index}})}
    code = ("import json; from tests.test_tf_distribute import fit_toy; "
            "print(json.dumps(fit_toy(True)))")
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _result(proc):
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_two_workers_on_loopback_train_to_the_accuracy_of_one_process():
    hosts = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    workers = [_worker(i, hosts) for i in range(2)]
    try:
        multi = [_result(w) for w in workers]
    finally:
        for w in workers:
            w.kill()
    single = fit_toy(False)  # the same fit without a strategy, in this process
    assert [m["replicas"] for m in multi] == [2, 2]
    # Gradients are all-reduced: both workers end with the same weights.
    for a, b in zip(multi[0]["proba"], multi[1]["proba"]):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert single["score"] > 0.9
    assert abs(multi[0]["score"] - single["score"]) <= 0.05, (multi[0]["score"],
                                                             single["score"])
