"""The estimator on Keras backends other than TensorFlow (``KERAS_BACKEND=jax``), as on a GPU
machine that has JAX and no TensorFlow."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mtlfaces._network import allow_xla, augmentation_layers, augmentation_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_allow_xla_lets_keras_compile_a_network_with_translation_and_zoom():
    """Keras's "auto" turns XLA off when any layer declares it unsupported; RandomTranslation
    and RandomZoom do. allow_xla marks the augmentation layers (and only them)."""
    import keras

    spec = augmentation_spec({"shift": 0.1, "zoom": 0.1, "rotation": 0.03})
    inputs = keras.Input((32, 32, 1))
    x = inputs
    for layer in augmentation_layers(spec, seed=0):
        x = layer(x)
    other = keras.layers.Lambda(lambda t: t, name="not_augmentation")
    other.supports_jit = False
    model = keras.Model(inputs, other(keras.layers.Flatten()(x)))
    declared = {layer.name: layer.supports_jit for layer in model.layers}
    assert declared["augment_shift"] is False and declared["augment_zoom"] is False
    assert allow_xla(model) is model
    declared = {layer.name: layer.supports_jit for layer in model.layers}
    assert all(v for k, v in declared.items() if k.startswith("augment_"))
    assert declared["not_augmentation"] is False  # left as it was


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np

    class NoTensorFlow:  # as on a machine without it
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tensorflow":
                raise ImportError("no tensorflow on this machine")

    sys.meta_path.insert(0, NoTensorFlow())
    from mtlfaces import MultiTaskFaceClassifier
    from mtlfaces.datasets import make_shapes
    from tests.conftest import TINY

    X, y = make_shapes(96, seed=0)
    est = MultiTaskFaceClassifier(epochs=2, **dict(TINY, augment={"shift": 0.1, "zoom": 0.1},
                                                   batch_size=8))
    est.fit(X, y)
    est.save(sys.argv[1])
    np.save(sys.argv[2], np.concatenate(est.predict_proba(X[:8]), axis=1))
    print(json.dumps({"backend": __import__("keras").backend.backend(),
                      "jit_compile": bool(est.model_.jit_compile),
                      "run_eagerly": bool(est.model_.run_eagerly),
                      "tensorflow": "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None,
                      "answers": est.predict(X[:3]).tolist()}))
""")


@pytest.mark.slow  # a second process that imports JAX and compiles a step: about 20 s
def test_fit_on_jax_without_tensorflow_compiles_the_training_step(tmp_path):
    """fit and predict run on JAX with TensorFlow absent (no tf.distribute lookups), the
    training step is compiled (it ran op by op before allow_xla: 0.6 s a step on an H200),
    and the model it saves answers the same here, on TensorFlow (train on a GPU machine with
    JAX, serve on CPUs)."""
    pytest.importorskip("jax")
    import numpy as np

    from mtlfaces import load_model
    from mtlfaces.datasets import make_shapes

    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    path, proba = tmp_path / "jax.mtlfaces", tmp_path / "proba.npy"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(proba)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    assert result["tensorflow"] is False
    assert result["run_eagerly"] is False and result["jit_compile"] is True
    assert len(result["answers"]) == 3
    X, _ = make_shapes(96, seed=0)
    loaded = load_model(path)
    mine = np.concatenate(loaded.predict_proba(X[:8]), axis=1)
    np.testing.assert_allclose(mine, np.load(proba), atol=2e-3)
    assert loaded.predict(X[:3]).tolist() == result["answers"]
