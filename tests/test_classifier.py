import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mtlfaces import MultiTaskFaceClassifier
from mtlfaces._network import trunk_layer_names

from mtlfaces.datasets import make_shapes

from .conftest import TINY


def test_import_does_not_load_tensorflow():
    import subprocess

    code = "import mtlfaces, sys; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_is_a_classifier_and_clones():
    clf = MultiTaskFaceClassifier(**TINY)
    assert is_classifier(clf)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    twin.set_params(epochs=3, filters=(4,))
    assert twin.epochs == 3 and clf.epochs != 3


def test_learns_every_task_including_a_half_labelled_one(fitted, shapes_test):
    X, y = shapes_test
    pred = fitted.predict(X)
    assert fitted.tasks_ == ["age", "gender", "emotion"]
    chance = {"age": 0.2, "gender": 0.5, "emotion": 1 / 3}
    truth = {"age": [{8: "Child", 24: "Young", 38: "Middle Age", 55: "Old", 80: "Very Old"}[a]
                     for a in y["age"]], "gender": y["gender"], "emotion": y["emotion"]}
    for j, task in enumerate(fitted.tasks_):
        acc = np.mean(pred[:, j] == np.asarray(truth[task], dtype=object))
        assert acc > chance[task] + 0.3, (task, acc)
    assert fitted.score(X, y) > 0.8


def test_output_shapes_and_attributes(fitted, shapes_test):
    X, _ = shapes_test
    proba = fitted.predict_proba(X[:7])
    assert [p.shape for p in proba] == [(7, 5), (7, 2), (7, 7)]
    for p in proba:
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert fitted.predict(X[:7]).shape == (7, 3)
    assert list(fitted.classes_[1]) == ["Female", "Male"]
    assert fitted.n_features_in_ == 32 * 32
    assert isinstance(fitted.history_, dict) and len(fitted.history_["loss"]) == 12
    assert all(isinstance(v, float) for v in fitted.history_["loss"])
    frame = fitted.predict_frame(X[:3])
    assert list(frame.columns) == ["age", "age_proba", "gender", "gender_proba",
                                   "emotion", "emotion_proba"]


def test_missing_labels_do_not_change_a_head(shapes):
    """A head whose labels are all missing in a batch of training gets no gradient."""
    X, y = shapes
    # A reloaded copy starts with a fresh optimizer, so no momentum from earlier steps.
    clf = joblib.load(_dump(MultiTaskFaceClassifier(epochs=1, **TINY).fit(X, y)))
    gender = clf.model_.get_layer("gender").get_weights()[0].copy()
    age = clf.model_.get_layer("age").get_weights()[0].copy()
    y2 = y.copy()
    y2["gender"] = None
    clf.partial_fit(X, y2)
    np.testing.assert_array_equal(gender, clf.model_.get_layer("gender").get_weights()[0])
    assert not np.array_equal(age, clf.model_.get_layer("age").get_weights()[0])


def test_images_of_other_sizes_colours_and_flattened_rows(fitted, shapes_test):
    X, _ = shapes_test
    import cv2

    big = np.stack([cv2.resize(x, (64, 64)) for x in X[:10]])
    rgb = np.repeat(X[:10, :, :, None], 3, axis=3)
    p0 = fitted.predict_proba(X[:10])[0]
    np.testing.assert_allclose(fitted.predict_proba(rgb)[0], p0, atol=1e-4)
    np.testing.assert_allclose(fitted.predict_proba(X[:10].reshape(10, -1))[0], p0, atol=1e-5)
    np.testing.assert_allclose(fitted.predict_proba(X[:10] / 255.0)[0], p0, atol=1e-4)
    assert fitted.predict(big).shape == (10, 3)


def test_same_seed_same_predictions(shapes, shapes_test):
    X, y = shapes
    a = MultiTaskFaceClassifier(epochs=2, **TINY).fit(X, y)
    b = MultiTaskFaceClassifier(epochs=2, **TINY).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(shapes_test[0])[0],
                                  b.predict_proba(shapes_test[0])[0])


def test_cosine_schedule_restarts_for_each_fit_and_spans_partial_fit_calls(shapes):
    """A warm-started fit trains again (the cosine schedule restarts; it once stayed
    at zero after the first fit), and so do later partial_fit calls."""
    X, y = shapes
    X, y = X[:96], y[["age"]][:96]
    clf = MultiTaskFaceClassifier(epochs=2, lr_schedule="cosine", warm_start=True, **TINY)

    def conv1():
        return clf.model_.get_layer("conv1").get_weights()[0].copy()

    clf.fit(X, y)
    after_first = conv1()
    iterations = int(clf.model_.optimizer.iterations)
    clf.fit(X, y)
    assert int(clf.model_.optimizer.iterations) == iterations  # a new optimizer, new schedule
    assert np.abs(conv1() - after_first).max() > 1e-4
    # partial_fit: one schedule over ``epochs`` calls; the optimizer carries on between calls.
    inc = MultiTaskFaceClassifier(epochs=4, lr_schedule="cosine", **TINY)
    inc.partial_fit(X, y)
    before = inc.model_.get_layer("conv1").get_weights()[0].copy()
    inc.partial_fit(X, y)
    assert int(inc.model_.optimizer.iterations) == 2 * int(np.ceil(len(X) / TINY["batch_size"]))
    assert np.abs(inc.model_.get_layer("conv1").get_weights()[0] - before).max() > 1e-4
    # Changing the learning rate between calls takes effect (a recompile).
    inc.set_params(learning_rate=1e-5, lr_schedule="constant")
    inc.partial_fit(X, y)
    assert int(inc.model_.optimizer.iterations) == int(np.ceil(len(X) / TINY["batch_size"]))
    assert float(inc.model_.optimizer.learning_rate) == pytest.approx(1e-5)


def test_a_fit_stopped_with_a_backup_resumes_and_the_next_fit_starts_at_epoch_0(
        shapes, tmp_path):
    """keras.callbacks.BackupAndRestore through ``callbacks``: a stopped fit goes on from
    its backup; a later warm-start fit of the same network runs all its epochs (Keras
    leaves the restored epoch on the model; the estimator clears it)."""
    import keras

    X, y = shapes
    X, y = X[:64], y[:64]
    epochs_run = []

    class Stopped(Exception):
        pass

    class Probe(keras.callbacks.Callback):
        stop = False

        def on_epoch_begin(self, epoch, logs=None):
            epochs_run.append(epoch)

        def on_epoch_end(self, epoch, logs=None):
            if Probe.stop:
                raise Stopped

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    clf = MultiTaskFaceClassifier(epochs=2, callbacks=[backup, Probe()], **TINY)
    Probe.stop = True
    with pytest.raises(Stopped):
        clf.fit(X, y)
    assert epochs_run == [0]
    Probe.stop = False
    clf.fit(X, y)  # the same call: resumed from the backup, which it then deletes
    assert epochs_run == [0, 1]
    clf.set_params(warm_start=True)
    clf.fit(X, y)  # the same network, no backup: all its epochs
    assert epochs_run == [0, 1, 0, 1]


def test_two_stages_grow_a_head_on_the_trained_trunk(shapes, shapes_test):
    X, y = shapes
    stage1 = MultiTaskFaceClassifier(epochs=6, **TINY).fit(X, y[["age", "gender"]])
    trunk = {n: [w.copy() for w in stage1.model_.get_layer(n).get_weights()]
             for n in trunk_layer_names(stage1.model_)}
    age_head = stage1.model_.get_layer("age").get_weights()[0].copy()
    assert stage1.tasks_ == ["age", "gender"]

    # A fresh copy of stage 1 (joblib) is the start of stage 2, so we can compare.
    stage2 = joblib.load(_dump(stage1))
    stage2.set_params(warm_start=True, epochs=6)
    # Before training the new head: the trunk and old heads are the stage-1 weights.
    from mtlfaces._network import add_heads

    grown = add_heads(stage2.model_, {"emotion": 7}, dense_units=(32,), dropout=0.0)
    for name, weights in trunk.items():
        for w0, w1 in zip(weights, grown.get_layer(name).get_weights()):
            np.testing.assert_array_equal(w0, w1)
    np.testing.assert_array_equal(grown.get_layer("age").get_weights()[0], age_head)

    stage2.fit(X, y[["emotion"]])
    assert stage2.tasks_ == ["age", "gender", "emotion"]
    # Training continued from the stage-1 trunk: it moved, but stays close.
    w0, w1 = trunk["conv1"][0], stage2.model_.get_layer("conv1").get_weights()[0]
    assert not np.array_equal(w0, w1)
    assert np.linalg.norm(w1 - w0) < np.linalg.norm(w0)
    Xt, yt = shapes_test
    pred = stage2.predict(Xt)
    assert pred.shape == (len(Xt), 3)
    # Both stages' tasks are predicted: age kept (its head was not trained in stage 2).
    assert stage2.score(Xt, yt[["age"]]) > 0.6
    assert stage2.score(Xt, yt[["emotion"]]) > 0.6


def _dump(est):
    import io

    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    return buf


def test_joblib_round_trip_predicts_the_same_and_keeps_training(fitted, shapes, shapes_test):
    Xt, _ = shapes_test
    copy = joblib.load(_dump(fitted))
    np.testing.assert_array_equal(copy.predict(Xt), fitted.predict(Xt))
    np.testing.assert_allclose(copy.predict_proba(Xt)[2], fitted.predict_proba(Xt)[2])
    X, y = shapes
    copy.partial_fit(X, y)
    assert len(copy.history_["loss"]) == len(fitted.history_["loss"]) + 1


def test_partial_fit_fixes_classes_of_generic_tasks():
    X, y = make_shapes(120, seed=3)
    labels = np.where(y["emotion"] == "Happy", "yes", "no")
    clf = MultiTaskFaceClassifier(**TINY)
    clf.partial_fit(X[:60], labels[:60], classes=["maybe", "no", "yes"])
    assert list(clf.classes_) == ["maybe", "no", "yes"]
    clf.partial_fit(X[60:], labels[60:])
    with pytest.raises(ValueError, match="'perhaps'"):
        clf.partial_fit(X[:5], np.array(["perhaps"] * 5))
    assert clf.predict(X[:4]).shape == (4,)


def test_in_pipeline_and_gridsearch(shapes):
    X, y = shapes
    pipe = Pipeline([("scale", FunctionTransformer(lambda a: a)),
                     ("clf", MultiTaskFaceClassifier(epochs=2, **TINY))])
    # Multi-task y (mixed labels, missing values) cannot be stratified: use plain KFold.
    grid = GridSearchCV(pipe, {"clf__dropout": [0.0, 0.2]}, cv=KFold(2), error_score="raise")
    grid.fit(X, y)
    assert grid.best_params_["clf__dropout"] in (0.0, 0.2)
    assert grid.predict(X[:3]).shape == (3, 3)


def test_balanced_class_weight_and_loss_weights_run(shapes):
    X, y = shapes
    clf = MultiTaskFaceClassifier(epochs=1, class_weight="balanced",
                                  loss_weights={"gender": 2.0}, **TINY)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="loss_weights names task"):
        clf.set_params(loss_weights={"beauty": 1.0}, warm_start=False).fit(X, y)


def test_validation_data_and_early_stopping_history(shapes, shapes_test):
    X, y = shapes
    params = dict(TINY, validation_fraction=0.25)  # 100 of 400: enough to stop on
    clf = MultiTaskFaceClassifier(epochs=2, early_stopping=True, patience=1, **params).fit(X, y)
    assert "val_loss" in clf.history_
    clf2 = MultiTaskFaceClassifier(epochs=2, **TINY).fit(X, y, validation_data=shapes_test)
    assert len(clf2.history_["val_age_accuracy"]) == 2


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("X,match", [
    (np.zeros((0, 32, 32)), "empty"),
    (np.zeros(10), "shape"),
    (np.zeros((3, 32, 32, 5)), "channel"),
    (np.full((3, 32, 32), np.nan), "NaN"),
    (np.array([["a", "b"], ["c", "d"]]), "non-numeric"),
])
def test_bad_images_are_clear_value_errors(X, match):
    with pytest.raises(ValueError, match=match):
        MultiTaskFaceClassifier(**TINY).fit(X, pd.DataFrame({"age": [20] * len(X)}))


def test_bad_labels_are_clear_value_errors(shapes):
    X, y = shapes
    clf = MultiTaskFaceClassifier(**TINY)
    with pytest.raises(ValueError, match="'Grumpy'.*emotion"):
        clf.fit(X[:4], pd.DataFrame({"emotion": ["Happy", "Grumpy", None, "Sad"]}))
    with pytest.raises(ValueError, match="4 images but y has 3"):
        clf.fit(X[:4], pd.DataFrame({"emotion": ["Happy", "Sad", None]}))
    with pytest.raises(ValueError, match="no labels"):
        clf.fit(X[:4], pd.DataFrame({"emotion": ["Happy"] * 4, "gender": [None] * 4}))
    with pytest.raises(ValueError, match="no task column"):
        clf.fit(X[:4], pd.DataFrame({"mood": ["Happy"] * 4}))
    with pytest.raises(ValueError, match="y has 2 columns but tasks"):
        MultiTaskFaceClassifier(tasks=("emotion",), **TINY).fit(
            X[:4], np.array([["Happy", "Male"]] * 4))
    with pytest.raises(ValueError, match="'epochs' parameter.*Got 0"):
        clf.set_params(epochs=0).fit(X, y)
    with pytest.raises(ValueError, match="'convs_per_block' parameter.*Got 0"):
        MultiTaskFaceClassifier(**dict(TINY, convs_per_block=0)).fit(X, y)


@pytest.mark.parametrize("param, value", [
    ("random_state", "seven"), ("tasks", "age"), ("callbacks", "stop early"),
    ("augment", "yes"), ("test_time_flip", "no"), ("mixed_precision", 1.5),
    ("warm_start", "maybe"), ("early_stopping", None), ("lr_schedule", "linear"),
    ("filters", (32, 0)), ("mixup", float("nan")),
])
def test_every_parameter_is_checked_before_training(shapes, param, value):
    X, y = shapes
    with pytest.raises(ValueError, match=param):
        MultiTaskFaceClassifier(**dict(TINY, epochs=1, **{param: value})).fit(X, y)


def test_a_random_state_generator_is_accepted_and_global_generators_are_left_alone(shapes):
    import random

    X, y = shapes
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.random_sample(3), random.random()
    np.random.seed(123)
    random.seed(123)
    a = MultiTaskFaceClassifier(**dict(TINY, epochs=2, random_state=np.random.RandomState(5)))
    a.fit(X, y)
    np.testing.assert_array_equal(np.random.random_sample(3), expected_np)
    assert random.random() == expected_py
    # The same generator state gives the same network.
    b = MultiTaskFaceClassifier(**dict(TINY, epochs=2, random_state=np.random.RandomState(5)))
    b.fit(X, y)
    for p, q in zip(a.predict_proba(X[:8]), b.predict_proba(X[:8])):
        np.testing.assert_allclose(p, q, atol=1e-6)


@pytest.mark.parametrize("change", [{"filters": (8, 32)}, {"dense_units": (64,)},
                                    {"convs_per_block": 2}])
def test_a_warm_fit_says_it_cannot_change_the_architecture(shapes, change):
    X, y = shapes
    clf = MultiTaskFaceClassifier(**dict(TINY, epochs=1)).fit(X, y)
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"warm_start=True.*{name}="):
        clf.set_params(warm_start=True, **change).fit(X, y)


def test_convs_per_block_deepens_the_trunk_and_survives_saving(shapes, shapes_test, tmp_path):
    from mtlfaces import load_model

    X, y = shapes
    deep = MultiTaskFaceClassifier(epochs=2, **dict(TINY, convs_per_block=2)).fit(X, y)
    convs = [layer.name for layer in deep.model_.layers if layer.name.startswith("conv")]
    assert convs == ["conv1_1", "conv1_2", "conv2_1", "conv2_2"]
    # The second conv of a block maps filters to filters: 3*3*8*8 weights in block 1.
    assert deep.model_.get_layer("conv1_2").kernel.shape == (3, 3, 8, 8)
    deep.save(tmp_path / "deep.mtlfaces")
    back = load_model(tmp_path / "deep.mtlfaces")
    assert back.get_params()["convs_per_block"] == 2
    np.testing.assert_allclose(back.predict_proba(shapes_test[0])[0],
                               deep.predict_proba(shapes_test[0])[0], atol=1e-6)


def test_two_d_array_y_with_and_without_task_names(shapes):
    X, y = shapes
    arr = y[["age", "emotion"]].to_numpy()
    named = MultiTaskFaceClassifier(tasks=("age", "emotion"), epochs=1, **TINY).fit(X, arr)
    assert named.tasks_ == ["age", "emotion"] and len(named.classes_[1]) == 7
    # Unnamed columns are generic tasks: classes come from the data, not the vocabularies.
    generic = MultiTaskFaceClassifier(epochs=1, **TINY).fit(X, arr)
    assert generic.tasks_ == ["y0", "y1"]
    assert sorted(generic.classes_[1]) == ["Happy", "Neutral", "Sad"]


def test_predict_before_fit_and_wrong_width(fitted):
    with pytest.raises(NotFittedError):
        MultiTaskFaceClassifier().predict(np.zeros((1, 32, 32)))
    with pytest.raises(ValueError, match="expecting 1024 features"):
        fitted.predict(np.zeros((2, 100)))


def test_a_traced_fit_traces_its_training_step_once(shapes, monkeypatch):
    """The optimizer's and metrics' variables exist before the trace, so TensorFlow does
    not trace the step a second time (it does when a trace creates variables)."""
    from keras.src.backend.tensorflow import trainer

    traced = []
    step = trainer.TensorFlowTrainer.train_step
    monkeypatch.setattr(trainer.TensorFlowTrainer, "train_step",
                        lambda self, data: traced.append(1) or step(self, data))
    X, y = shapes
    model = MultiTaskFaceClassifier(epochs=2, **TINY).fit(X, y)  # 2 epochs of 13 batches
    assert not model.model_.run_eagerly and len(traced) == 1


def test_a_fit_of_a_few_steps_runs_eagerly_and_a_longer_one_traces(fitted, shapes):
    from mtlfaces._classifier import EAGER_STEPS

    assert not fitted.model_.run_eagerly  # 12 epochs of 13 batches: a traced graph
    X, y = shapes
    few = MultiTaskFaceClassifier(epochs=2, **{**TINY, "batch_size": 64})
    with pytest.warns(UserWarning, match="optimizer steps"):
        few.fit(X[:128], y.iloc[:128])  # 2 batches an epoch, 2 epochs
    assert few.model_.run_eagerly and 2 * 2 <= EAGER_STEPS
    assert few.predict(X[:5]).shape == (5, 3)
    eager_step = few.model_.train_function
    few.set_params(warm_start=True, epochs=4).fit(X, y)  # 13 batches, 4 epochs
    # A warm fit of many steps traces a new step; it does not keep the eager one.
    assert not few.model_.run_eagerly and few.model_.train_function is not eager_step
    stream = MultiTaskFaceClassifier(**{**TINY, "batch_size": 64})
    stream.partial_fit(X[:128], y.iloc[:128])  # 2 steps, but the next calls reuse them
    assert not stream.model_.run_eagerly
