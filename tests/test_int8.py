"""The 8-bit copy of a network (MultiTaskFaceClassifier.quantize): close answers, saved with
the model file, dropped by any fit, refused when damaged."""

import zipfile

import numpy as np
import pytest

from mtlfaces import ModelFileError, load_model


@pytest.fixture()
def fresh(fitted, tmp_path):
    """A copy of the session's fitted model that a test may change."""
    fitted.save(tmp_path / "fresh.mtlfaces")
    return load_model(tmp_path / "fresh.mtlfaces")


def test_the_8_bit_copy_answers_as_the_network_does(fresh, shapes, shapes_test):
    Xt, yt = shapes_test
    keras_proba = fresh.predict_proba(Xt)
    keras_score = fresh.score(Xt, yt)
    fresh.quantize(shapes[0])
    assert isinstance(fresh.int8_, bytes) and fresh.inference == "auto"
    int8_proba = fresh.predict_proba(Xt)
    for k, q in zip(keras_proba, int8_proba):
        assert np.abs(k - q).max() < 0.1
        assert (k.argmax(1) == q.argmax(1)).mean() > 0.95
    assert fresh.score(Xt, yt) > keras_score - 0.03
    # "keras" ignores the copy: exactly the network's answers.
    for k, again in zip(keras_proba, fresh.set_params(inference="keras").predict_proba(Xt)):
        np.testing.assert_array_equal(k, again)
    # One image's answer does not depend on its batch.
    fresh.set_params(inference="int8")
    alone = fresh.predict_proba(Xt[3:4])
    for a, b in zip(alone, fresh.predict_proba(Xt[:8])):
        np.testing.assert_allclose(a[0], b[3], atol=1e-6)


def test_the_copy_travels_in_the_model_file_and_any_fit_drops_it(fresh, shapes, shapes_test,
                                                                 tmp_path):
    X, y = shapes
    fresh.quantize(X)
    fresh.save(tmp_path / "q.mtlfaces")
    with zipfile.ZipFile(tmp_path / "q.mtlfaces") as zf:
        assert "model.int8.tflite" in zf.namelist()
    again = load_model(tmp_path / "q.mtlfaces")
    assert again.int8_ == fresh.int8_
    np.testing.assert_array_equal(again.predict(shapes_test[0]), fresh.predict(shapes_test[0]))
    again.partial_fit(X[:64], y.iloc[:64])
    assert not hasattr(again, "int8_")  # stale once the network moved
    with pytest.raises(ValueError, match="no 8-bit copy; call quantize"):
        again.set_params(inference="int8").predict(shapes_test[0][:2])


def test_a_copy_of_other_weights_is_never_saved_or_loaded(fresh, shapes, tmp_path):
    """Weights set outside fit (averaged, loaded from a checkpoint) leave the copy behind:
    save leaves it out and says so; a file whose copy is of other weights is refused."""
    import json

    fresh.quantize(shapes[0])
    fresh.save(tmp_path / "q.mtlfaces")
    fresh.model_.set_weights([w * 0.5 for w in fresh.model_.get_weights()])
    with pytest.warns(UserWarning, match="saved without it"):
        fresh.save(tmp_path / "moved.mtlfaces")
    with zipfile.ZipFile(tmp_path / "moved.mtlfaces") as zf:
        assert "model.int8.tflite" not in zf.namelist()
    assert not hasattr(load_model(tmp_path / "moved.mtlfaces"), "int8_")
    # The copy of q.mtlfaces beside the network of moved.mtlfaces, in one file.
    bad = tmp_path / "bad.mtlfaces"
    with zipfile.ZipFile(tmp_path / "q.mtlfaces") as q, \
            zipfile.ZipFile(tmp_path / "moved.mtlfaces") as moved, \
            zipfile.ZipFile(bad, "w") as dst:
        for name in moved.namelist():
            dst.writestr(name, moved.read(name) if name != "mtlfaces.json" else q.read(name))
        dst.writestr("model.int8.tflite", q.read("model.int8.tflite"))
    assert json.loads(zipfile.ZipFile(bad).read("mtlfaces.json"))["int8_of"]
    with pytest.raises(ModelFileError, match="bad.mtlfaces: the model file's 8-bit network "
                                             "was made from other weights"):
        load_model(bad)


def test_a_damaged_copy_is_refused_with_the_file_named(fresh, shapes, tmp_path):
    fresh.quantize(shapes[0])
    fresh.save(tmp_path / "q.mtlfaces")
    bad = tmp_path / "bad.mtlfaces"
    with zipfile.ZipFile(tmp_path / "q.mtlfaces") as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data[: len(data) // 2] if name.endswith(".tflite") else data)
    with pytest.raises(ModelFileError, match="bad.mtlfaces: the model file's 8-bit network"):
        load_model(bad)


def test_tasks_of_one_width_keep_their_own_outputs(shapes):
    """Three two-class tasks, not in alphabetical order: each must read its own output
    (TensorFlow Lite would list a dict's outputs by name)."""
    from mtlfaces import MultiTaskFaceClassifier

    from .conftest import TINY

    X, y = shapes
    # Learnable two-class tasks from the shapes' visible structure.
    y = y.assign(smile=np.where(y["emotion"] == "Happy", "yes", "no"),
                 old=np.where(y["age"] >= 50, "yes", "no"))
    tasks = ("smile", "gender", "old")
    clf = MultiTaskFaceClassifier(tasks=tasks, **TINY, epochs=12).fit(X, y[list(tasks)])
    keras_proba = clf.predict_proba(X[:100])
    clf.quantize(X)
    int8_proba = clf.predict_proba(X[:100])
    for i in range(3):
        own = np.abs(keras_proba[i] - int8_proba[i]).max()
        assert own < 0.05, tasks[i]
        for j in range(3):  # any other task's output would be far off
            if j != i:
                assert np.abs(keras_proba[i] - int8_proba[j]).mean() > 4 * own, (i, j)
