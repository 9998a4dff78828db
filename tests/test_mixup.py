"""Mixup for masked multi-task training (``MultiTaskFaceClassifier(mixup=...)``)."""

import numpy as np
import pandas as pd
import pytest

from mtlfaces import MultiTaskFaceClassifier
from mtlfaces._mixup import mix_batch, partners, soft_targets


def test_partners_stay_within_a_label_pattern_and_are_never_themselves():
    rng = np.random.RandomState(0)
    patterns = np.array([3, 3, 1, 1, 1, 2, 3, 1, 0])
    for _ in range(20):
        j = partners(patterns, rng)
        assert (patterns[j] == patterns).all()
        alone = np.isin(patterns, [2, 0])  # the only rows of their pattern
        assert (j[alone] == np.flatnonzero(alone)).all()
        assert (j[~alone] != np.flatnonzero(~alone)).all()


def test_soft_targets_are_one_hot_or_the_given_soft_target():
    t = np.array([[2, 1.0], [-1, 0.0], [0, 2.0]], np.float32)
    s = soft_targets(t, 3)
    np.testing.assert_array_equal(s[:, :2], t)
    np.testing.assert_array_equal(s[:, 2:], [[0, 0, 1], [0, 0, 0], [1, 0, 0]])
    given = np.concatenate([t, [[0, 0.5, 0.5], [0, 0, 0], [0, 0, 0]]], 1).astype(np.float32)
    np.testing.assert_array_equal(soft_targets(given, 3)[:, 2:],
                                  [[0, 0.5, 0.5], [0, 0, 0], [1, 0, 0]])


def _batch():
    # Faces 0-3 have emotion only (FER2013-like), 4-7 age only (UTKFace-like: weights 1
    # and 2, as a class weight would give), 8 none. Each image is its own constant value,
    # so a blend's share of each face can be read back from its pixels.
    images = np.repeat(np.arange(9, dtype=np.float32), 16).reshape(9, 4, 4, 1) * 10
    emotion = np.array([[1, 1], [3, 1], [3, 1], [6, 1]] + [[-1, 0]] * 5, np.float32)
    age = np.array([[-1, 0]] * 4 + [[0, 1], [2, 2], [4, 1], [1, 2]] + [[-1, 0]], np.float32)
    return images, {"emotion": emotion, "age": age}


def test_mix_batch_blends_faces_and_targets_alike_and_invents_no_label():
    images, targets = _batch()
    mixed, out = mix_batch(images, targets, {"emotion": 7, "age": 5}, 1.0,
                           np.random.RandomState(3))
    own = np.arange(9)
    value = mixed[:, 0, 0, 0] / 10  # lam * i + (1 - lam) * j
    assert np.allclose(mixed, mixed[:, :1, :1, :])  # still one blend per image
    for t, n in (("emotion", 7), ("age", 5)):
        soft = soft_targets(targets[t], n)
        have = targets[t][:, 0] >= 0
        # No face gains a label it lacked, and the one with none stays unmixed.
        assert ((out[t][:, 0] >= 0) == have).all() and (out[t][~have, 1] == 0).all()
        np.testing.assert_array_equal(out[t][~have, 2:], 0)
        for i in np.flatnonzero(have):
            # The partner is the other face whose label pattern matches, read from the
            # pixels (the blend lies between the two faces' values).
            j = [k for k in np.flatnonzero(have) if k != i and
                 min(i, k) <= value[i] <= max(i, k)]
            lam = [(value[i] - k) / (i - k) for k in j]
            ok = False
            for k, lm in zip(j, lam):
                wi, wk = lm * soft[i, 1], (1 - lm) * soft[k, 1]
                expected = (wi * soft[i, 2:] + wk * soft[k, 2:]) / (wi + wk)
                ok |= (np.isclose(out[t][i, 1], wi + wk, atol=1e-5)
                       and np.allclose(out[t][i, 2:], expected, atol=1e-5))
            assert ok, (t, i)
            np.testing.assert_allclose(out[t][i, 2:].sum(), 1.0, rtol=1e-5)
    assert value[8] == 8  # no partner of its pattern: unchanged
    assert not np.allclose(value[:8], own[:8])  # the others were blended


def test_a_blended_target_gives_the_blend_of_the_two_faces_losses():
    from mtlfaces._losses import masked_crossentropy

    images, targets = _batch()
    _, out = mix_batch(images, targets, {"emotion": 7, "age": 5}, 1.0,
                       np.random.RandomState(0))
    p = np.random.RandomState(1).dirichlet(np.ones(7), size=9).astype(np.float32)
    loss = masked_crossentropy()
    got = np.asarray(loss(out["emotion"], p))
    soft = out["emotion"][:, 2:]
    labelled = out["emotion"][:, 0] >= 0
    ce = -(soft * np.log(p)).sum(axis=1) * out["emotion"][:, 1] * labelled
    np.testing.assert_allclose(got, ce * 9 / labelled.sum(), rtol=1e-5)


@pytest.mark.parametrize("bad", [-0.1, np.inf, np.nan, "0.2", True])
def test_bad_mixup_is_a_clear_error(bad):
    est = MultiTaskFaceClassifier(image_size=8, filters=(2,), dense_units=(4,), epochs=1,
                                  mixup=bad)
    with pytest.raises(ValueError, match="mixup"):
        est.fit(np.zeros((4, 8, 8), np.uint8), pd.DataFrame({"gender": ["m", "f"] * 2}))


def _blend_response(mixup):
    """A tiny network taught dark = Female, bright = Male; its P(Male) on the greys between."""
    n = 256
    X = np.zeros((n, 8, 8), np.float32)
    X[n // 2:] = 1.0
    y = pd.DataFrame({"gender": ["Female"] * (n // 2) + ["Male"] * (n // 2)})
    est = MultiTaskFaceClassifier(image_size=8, filters=(4,), dense_units=(8,), dropout=0.0,
                                  epochs=30, batch_size=64, learning_rate=0.01,
                                  validation_fraction=0, augment=False, mixup=mixup,
                                  random_state=0)
    est.fit(X, y)
    greys = np.array([0.0, 0.25, 0.75, 1.0], np.float32)
    return est.predict_proba(np.ones((4, 8, 8), np.float32) * greys[:, None, None])[0][:, 1]


def test_mixup_teaches_the_blends_and_plain_training_does_not():
    with_mixup = _blend_response(1.0)
    plain = _blend_response(0.0)
    # Both tell the two kinds of image apart.
    assert with_mixup[0] < 0.2 and with_mixup[3] > 0.8
    assert plain[0] < 0.1 and plain[3] > 0.9
    # With mixup, a quarter-bright image is about a quarter Male, as its training blends
    # were; plain training was never shown a blend and is far surer on the greys.
    np.testing.assert_allclose(with_mixup[1:3], [0.25, 0.75], atol=0.15)
    assert np.abs(plain[1:3] - [0.25, 0.75]).max() > 0.2


def test_mixup_fits_are_reproducible_and_leave_prediction_unmixed(shapes):
    X, y = shapes
    kw = dict(image_size=16, filters=(4,), dense_units=(8,), epochs=2, batch_size=32,
              augment=False, mixup=0.4, random_state=0)
    val = (X[200:300], y[200:300])  # never mixed
    a = MultiTaskFaceClassifier(**kw).fit(X[:160], y[:160], validation_data=val)
    b = MultiTaskFaceClassifier(**kw).fit(X[:160], y[:160], validation_data=val)
    np.testing.assert_array_equal(a.predict_proba(X[:20])[0], b.predict_proba(X[:20])[0])
    # Prediction is deterministic: the same images, the same answers.
    np.testing.assert_array_equal(a.predict_proba(X[:20])[0], a.predict_proba(X[:20])[0])
    assert "val_loss" in a.history_ and len(a.history_["loss"]) == 2
    # partial_fit mixes too, and keeps going on the same network.
    a.partial_fit(X[:64], y[:64])
    assert len(a.history_["loss"]) == 3
