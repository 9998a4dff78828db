import zipfile

import numpy as np
import pytest

import mtlfaces
from mtlfaces import ModelFileError, load_model


def test_save_load_round_trip_without_pickle(fitted, shapes_test, tmp_path):
    path = tmp_path / "model.mtlfaces"
    fitted.save(path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert names == {"mtlfaces.json", "model.keras"}
        assert not any(n.endswith((".pkl", ".pickle")) for n in names)
    again = load_model(path)
    Xt, _ = shapes_test
    np.testing.assert_allclose(again.predict_proba(Xt)[0], fitted.predict_proba(Xt)[0], atol=1e-6)
    assert again.get_params()["filters"] == fitted.get_params()["filters"]
    assert again.tasks_ == fitted.tasks_
    assert [list(c) for c in again.classes_] == [list(c) for c in fitted.classes_]
    assert type(again).load(path).tasks_ == fitted.tasks_


def test_corrupt_truncated_and_foreign_files_are_named(fitted, tmp_path):
    good = tmp_path / "good.mtlfaces"
    fitted.save(good)
    data = good.read_bytes()
    cases = {
        "truncated.mtlfaces": data[: len(data) // 2],
        "garbage.mtlfaces": b"\x00" * 100,
        "empty.mtlfaces": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelFileError, match=name):
            load_model(tmp_path / name)
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ModelFileError, match="not an mtlfaces model"):
        load_model(foreign)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "absent.mtlfaces")
    # A model whose Keras part is damaged: the JSON is fine, the network is not.
    bad = tmp_path / "badnet.mtlfaces"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        dst.writestr("mtlfaces.json", src.read("mtlfaces.json"))
        dst.writestr("model.keras", b"PK\x03\x04 broken")
    with pytest.raises(ModelFileError, match="badnet.mtlfaces"):
        load_model(bad)


def test_model_with_code_is_refused(tmp_path, fitted):
    """A Keras file holding a Lambda layer (arbitrary code) must not load in safe mode."""
    import keras

    inp = keras.Input((32, 32, 1))
    out = keras.layers.Lambda(lambda x: x * 2)(inp)
    evil = keras.Model(inp, {"age": keras.layers.Dense(5)(keras.layers.Flatten()(out))})
    keras_path = tmp_path / "evil.keras"
    evil.save(keras_path)
    good = tmp_path / "good.mtlfaces"
    fitted.save(good)
    path = tmp_path / "evil.mtlfaces"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        dst.writestr("mtlfaces.json", src.read("mtlfaces.json"))
        dst.writestr("model.keras", keras_path.read_bytes())
    with pytest.raises(ModelFileError, match="evil.mtlfaces"):
        load_model(path)


def test_save_is_atomic(fitted, tmp_path, monkeypatch):
    import mtlfaces._serialization as ser

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ser, "model_to_bytes", boom)
    target = tmp_path / "m.mtlfaces"
    with pytest.raises(RuntimeError):
        fitted.save(target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_0_3_pickle_state_loads_with_its_classes_kept_once(fitted, shapes_test):
    """mtlfaces 0.3 pickled the classes twice (``classes_`` and ``_classes``) and the
    input's ndim; such a state still loads and predicts the same."""
    import pickle

    state = fitted.__getstate__()
    old = dict(state, _classes=list(fitted.classes_), _single_output=False, _input_ndim=3)
    clone = type(fitted).__new__(type(fitted))
    clone.__setstate__(pickle.loads(pickle.dumps(old)))
    assert not {"_classes", "_single_output", "_input_ndim"} & set(vars(clone))
    Xt, _ = shapes_test
    np.testing.assert_allclose(clone.predict_proba(Xt)[0], fitted.predict_proba(Xt)[0],
                               atol=1e-6)


def test_a_0_3_model_file_loads(tmp_path, fitted, shapes_test):
    """A file with 0.3's metadata (``input_ndim``, no newer keys) loads the same network."""
    import json

    good = tmp_path / "new.mtlfaces"
    fitted.save(good)
    old = tmp_path / "old.mtlfaces"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(old, "w") as dst:
        meta = json.loads(src.read("mtlfaces.json"))
        meta["input_ndim"] = 3
        meta["versions"] = {"mtlfaces": "0.3.1"}
        dst.writestr("mtlfaces.json", json.dumps(meta))
        dst.writestr("model.keras", src.read("model.keras"))
    again = load_model(old)
    Xt, _ = shapes_test
    np.testing.assert_allclose(again.predict_proba(Xt)[0], fitted.predict_proba(Xt)[0],
                               atol=1e-6)
    assert not hasattr(again, "_input_ndim")


def test_the_estimator_module_and_the_file_format_do_not_import_each_other():
    import ast
    import os

    here = os.path.dirname(mtlfaces.__file__)
    with open(os.path.join(here, "_serialization.py")) as fh:
        tree = ast.parse(fh.read())
    imported = {node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(m.lstrip(".").startswith(("_classifier", "hog", "pipeline", "cli"))
                   for m in imported), imported


def test_the_old_analysis_module_warns_and_still_works(astronaut):
    import importlib
    import sys

    sys.modules.pop("mtlfaces.analysis", None)
    with pytest.warns(DeprecationWarning, match="mtlfaces.analyze"):
        analysis = importlib.import_module("mtlfaces.analysis")
    from mtlfaces.pipeline import FaceAnalyzer

    assert analysis.FaceAnalyzer is FaceAnalyzer
    assert callable(analysis.shift_boxes) and analysis.FaceTracker(smoothing=0.5)


def test_a_model_predicted_with_is_freed_with_its_estimator(fitted, shapes_test, tmp_path):
    """The traced inference function must not keep its network alive (it did: loading and
    predicting with a model a thousand times grew the process by 1.6 GB)."""
    import gc
    import weakref

    fitted.save(tmp_path / "m.mtlfaces")
    est = load_model(tmp_path / "m.mtlfaces")
    est.predict(shapes_test[0][:2])
    network = weakref.ref(est.model_)
    del est
    gc.collect()
    assert network() is None
