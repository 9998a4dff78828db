"""A few hundred labelled faces at the default settings must learn, not end at chance.

The data: 64×64 images where gender is a bright 8×8 corner (top: Female, bottom: Male, so a
horizontal flip keeps the label) and emotion a bright bar whose row encodes the class, on
noise; half the emotion labels missing.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, KFold

from mtlfaces import MultiTaskFaceClassifier
from mtlfaces._classifier import MIN_STEPS, MIN_VALIDATION

EMOTIONS = ("Happy", "Sad", "Angry")


def corners_and_bars(n, seed, missing_emotion=0.5):
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 60, (n, 64, 64)).astype(np.uint8)
    gender = rng.randint(0, 2, n)
    emotion = rng.randint(0, 3, n)
    for i in range(n):
        top = 2 if gender[i] == 0 else 54
        X[i, top:top + 8, 4:12] = 230
        row = 20 + 14 * emotion[i]
        X[i, row:row + 4, 16:48] = 200
    y = pd.DataFrame({"gender": np.where(gender == 0, "Female", "Male"),
                      "emotion": np.array(EMOTIONS, dtype=object)[emotion]})
    y.loc[rng.rand(n) < missing_emotion, "emotion"] = None
    return X, y


def accuracy(model, X, y):
    pred = pd.DataFrame(model.predict(X), columns=model.tasks_)
    return {t: float((pred[t] == y[t]).mean()) for t in model.tasks_}


@pytest.fixture(scope="module")
def small():
    return corners_and_bars(240, seed=0), corners_and_bars(200, seed=1, missing_emotion=0.0)


@pytest.fixture(scope="module")
def fitted_small(small):
    (X, y), _ = small
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MultiTaskFaceClassifier(epochs=6, random_state=0).fit(X, y)
    return model, [str(w.message) for w in caught]


def test_defaults_learn_both_tasks_from_240_images(small, fitted_small):
    _, (Xt, yt) = small
    model, _ = fitted_small
    scores = accuracy(model, Xt, yt)
    assert scores["gender"] >= 0.9 and scores["emotion"] >= 0.9, scores


def test_a_hold_out_too_small_to_stop_on_is_not_taken_and_says_so(fitted_small):
    model, messages = fitted_small
    # 10 % of 240 is 24 images: too few; every image trains and nothing stops early.
    assert any("would hold out 24 of 240 images" in m for m in messages), messages
    assert "val_loss" not in model.history_ and len(model.history_["loss"]) == 6


def test_the_batch_follows_the_data_size():
    assert MultiTaskFaceClassifier()._batch_size(240) == 16
    assert MultiTaskFaceClassifier()._batch_size(1000) == 62
    assert MultiTaskFaceClassifier()._batch_size(45000) == 128
    assert MultiTaskFaceClassifier(batch_size=32)._batch_size(240) == 32


def test_warm_start_keeps_learning(small):
    (X, y), (Xt, yt) = small
    model = MultiTaskFaceClassifier(epochs=1, validation_fraction=0.0, random_state=1)
    with pytest.warns(UserWarning, match="optimizer steps"):
        model.fit(X, y)  # 15 steps: too few, and it says so
    first = model.history_["loss"][0]
    model.set_params(warm_start=True, epochs=3).fit(X, y)
    # The warm fit goes on from the first fit's weights (a fresh start's loss is the first's)
    # and its epochs join the history.
    assert len(model.history_["loss"]) == 4
    assert model.history_["loss"][1] < 0.5 * first, model.history_["loss"]
    scores = accuracy(model, Xt, yt)
    assert min(scores.values()) >= 0.9, scores


def test_partial_fit_keeps_learning(small):
    (X, y), (Xt, yt) = small
    stream = MultiTaskFaceClassifier(random_state=2)
    losses = []
    for _ in range(3):
        stream.partial_fit(X, y)
        losses.append(stream.history_["loss"][-1])
    assert losses[-1] < 0.5 * losses[0], losses
    scores = accuracy(stream, Xt, yt)
    assert min(scores.values()) >= 0.9, scores


def test_too_few_steps_warn_and_batchnorm_statistics_are_the_datas(small):
    """A one-epoch fit is too short to learn: it warns, and its BatchNorm layers carry the
    statistics of the training images, not their initial mean 0 / variance 1."""
    import keras

    (X, y), _ = small
    params = dict(epochs=1, validation_fraction=0.0, augment=False, random_state=0)
    with pytest.warns(UserWarning, match=f"fewer than {MIN_STEPS}"):
        model = MultiTaskFaceClassifier(**params).fit(X, y)
    bn = model.model_.get_layer("bn1")
    conv = keras.Model(model.model_.input, model.model_.get_layer("conv1").output)
    images = X[:, :, :, None].astype(np.float32) / 255.0
    import cv2

    images = np.stack([cv2.resize(x, (48, 48), interpolation=cv2.INTER_AREA)
                       for x in images])[..., None]
    activations = np.asarray(conv(images, training=False), dtype=np.float64)
    mean = activations.mean(axis=(0, 1, 2))
    np.testing.assert_allclose(np.asarray(bn.moving_mean), mean, rtol=0.05, atol=1e-3)
    assert np.abs(np.asarray(bn.moving_mean)).max() > 1e-3  # not the initial zeros


def test_small_validation_data_is_monitored_but_not_stopped_on(small):
    (X, y), (Xt, yt) = small
    # Validation labels that contradict the training ones: the better the network learns,
    # the higher its validation loss, so a stop at patience 1 would end the fit early.
    wrong = yt[:50].assign(
        gender=np.where(yt["gender"][:50] == "Male", "Female", "Male"),
        emotion=yt["emotion"][:50].map(dict(zip(EMOTIONS, EMOTIONS[1:] + EMOTIONS[:1]))))
    model = MultiTaskFaceClassifier(epochs=4, random_state=0, patience=1)
    with pytest.warns(UserWarning, match="too few to stop early on"):
        model.fit(X, y, validation_data=(Xt[:50], wrong))
    val_loss = model.history_["val_loss"]
    assert np.all(np.diff(val_loss) > 0), val_loss  # the premise: it rose at every epoch
    assert len(val_loss) == 4  # and every epoch ran
    assert 50 < MIN_VALIDATION  # the premise: 50 images are below the threshold


def test_grid_search_on_small_data_scores_well_above_chance(small):
    (X, y), _ = small
    y = y.assign(emotion=corners_and_bars(240, seed=0, missing_emotion=0.0)[1]["emotion"])
    grid = GridSearchCV(MultiTaskFaceClassifier(epochs=6, validation_fraction=0.0,
                                                random_state=0),
                        {"learning_rate": [3e-3]}, refit=False,  # one candidate: the suite's time
                        cv=KFold(2, shuffle=True, random_state=0))
    grid.fit(X, y)
    # Chance: gender 0.5, emotion 0.33, so a mean of 0.42.
    assert grid.best_score_ > 0.85, grid.cv_results_["mean_test_score"]
