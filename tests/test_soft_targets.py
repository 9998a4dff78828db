"""fit(soft_targets=...): annotators' votes and a teacher's probabilities as targets."""

import numpy as np
import pandas as pd
import pytest

from mtlfaces import MultiTaskFaceClassifier
from mtlfaces._losses import masked_accuracy_metric, masked_crossentropy
from mtlfaces._mixup import mix_batch


def test_a_soft_target_without_a_label_counts_in_the_loss_not_in_the_accuracy():
    p = np.array([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.25, 0.25]], np.float32)
    soft = np.array([[0, 0, 0], [0.2, 0.0, 0.8], [0, 0, 0]], np.float32)
    # Row 0 labelled, row 1 a teacher's guess (no label), row 2 nothing.
    y_true = np.concatenate([np.array([[1, 1], [-1, 0.5], [-1, 1]], np.float32), soft], 1)
    got = np.asarray(masked_crossentropy()(y_true, p))
    expected = np.array([-np.log(0.6), -0.5 * (0.2 * np.log(0.2) + 0.8 * np.log(0.6)), 0])
    np.testing.assert_allclose(got, expected * 3 / 2, rtol=1e-5)  # 3 rows, 2 carry the task
    metric = masked_accuracy_metric()
    metric.update_state(y_true, p)
    assert float(metric.result()) == 1.0  # row 0 only: the guess is no label


def test_mixup_pairs_a_teachers_guess_with_faces_that_carry_the_task():
    rng = np.random.RandomState(0)
    images = rng.rand(6, 4, 4, 1).astype(np.float32)
    soft = np.zeros((6, 3), np.float32)
    soft[3:] = [0.1, 0.2, 0.7]
    targets = {"emotion": np.concatenate(
        [np.array([[0, 1], [1, 1], [2, 1], [-1, .5], [-1, .5], [-1, .5]], np.float32), soft], 1)}
    _, out = mix_batch(images, targets, {"emotion": 3}, 1.0, rng)
    # Every face carries the task (a label or a guess): all are mixed, none lost.
    assert (out["emotion"][:, 2:].sum(axis=1) > 0.999).all()
    assert (out["emotion"][:, 1] > 0).all()
    # A blend's class is that of the face with the larger share, when it has a label.
    codes = out["emotion"][:, 0]
    assert set(codes.tolist()) <= {-1.0, 0.0, 1.0, 2.0}


def _tiny(**kw):
    settings = dict(image_size=8, filters=(4,), dense_units=(8,), dropout=0.0, epochs=20,
                    batch_size=32, learning_rate=0.03, validation_fraction=0, augment=False,
                    random_state=0)
    return MultiTaskFaceClassifier(**dict(settings, **kw))


def _data():
    X = np.random.RandomState(0).randint(0, 256, (64, 8, 8)).astype(np.uint8)
    return X, pd.DataFrame({"gender": ["Female", "Male"] * 32})


def test_soft_targets_replace_the_labels_one_hot():
    X, y = _data()
    plain = _tiny().fit(X, y).predict_proba(X)[0].mean(axis=0)
    votes = np.tile([[0.9, 0.1]], (64, 1))  # every face: 90 % "Female"
    soft = _tiny().fit(X, y, soft_targets={"gender": votes}).predict_proba(X)[0].mean(axis=0)
    assert abs(plain[0] - 0.5) < 0.2
    assert soft[0] > 0.75


@pytest.mark.parametrize("mixup", [0.0, 0.4])
def test_a_teachers_guesses_train_faces_that_have_no_label(mixup):
    X, y = _data()
    y = y.assign(gender=[None] * 32 + ["Male"] * 32)  # half unlabelled, half "Male"
    guesses = np.zeros((64, 2))
    guesses[:32] = [1.0, 0.0]  # the teacher says the unlabelled half is "Female"
    for weight, low, high in ((1.0, 0.35, 0.65), (0.0, 0.0, 0.2)):
        est = _tiny(soft_target_weight=weight, mixup=mixup)
        female = est.fit(X, y, soft_targets={"gender": guesses}).predict_proba(X)[0][:, 0].mean()
        # Weight 1: half the faces learn "Female"; weight 0: only "Male" is ever taught.
        assert low < female < high, (weight, female)


def test_soft_targets_are_given_per_class_in_the_tasks_order():
    X, y = _data()
    votes = np.zeros((64, 7))
    est = _tiny()
    y = y.assign(emotion=["Happy"] * 64)
    votes[:, 3] = 0.5
    votes[:, 5] = 0.5  # Happy and Surprise
    p = est.fit(X, y, soft_targets={"emotion": votes}).predict_proba(X)
    emotion = p[est.tasks_.index("emotion")].mean(axis=0)
    assert emotion[3] > 0.35 and emotion[5] > 0.35


@pytest.mark.parametrize("soft, match", [
    ({"age": np.full((64, 5), 0.2)}, "names task 'age'"),
    ({"gender": np.full((64, 3), 1 / 3)}, r"shape \(64, 3\); expected \(64, 2\)"),
    ({"gender": np.full((63, 2), 0.5)}, r"expected \(64, 2\)"),
    ({"gender": np.tile([[0.7, 0.7]], (64, 1))}, "row 0 .* summing to 1"),
    ({"gender": np.tile([[1.5, -0.5]], (64, 1))}, "row 0"),
    ({"gender": np.tile([[np.nan, 1.0]], (64, 1))}, "row 0"),
    ({"gender": [["a", "b"]] * 64}, "not a numeric array"),
    ([np.zeros((64, 2))], "must be a dict"),
])
def test_bad_soft_targets_are_clear_errors(soft, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        _tiny(epochs=1).fit(X, y, soft_targets=soft)


def test_rows_of_zeros_or_nan_give_no_soft_target():
    X, y = _data()
    none = np.full((64, 2), np.nan)
    none[::2] = 0.0
    a = _tiny(epochs=3).fit(X, y).predict_proba(X)[0]
    b = _tiny(epochs=3).fit(X, y, soft_targets={"gender": none}).predict_proba(X)[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf, True])
def test_bad_soft_target_weight_is_a_clear_error(bad):
    X, y = _data()
    with pytest.raises(ValueError, match="soft_target_weight"):
        _tiny(epochs=1, soft_target_weight=bad).fit(X, y)
