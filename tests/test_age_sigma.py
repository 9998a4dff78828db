"""Label-distribution targets for the age task (``age_sigma``)."""

import numpy as np
import pandas as pd
import pytest

from mtlfaces import MultiTaskFaceClassifier
from mtlfaces.tasks import AGE_GROUPS, age_distribution, age_to_group


def test_age_distribution_spreads_each_age_around_its_year():
    ages = np.array([0, 17, 18, 29, 29.9, 44, 64, 65, 100, np.nan])
    d = age_distribution(ages, 3.0)
    assert d.shape == (10, 5)
    np.testing.assert_allclose(d[:-1].sum(axis=1), 1.0)
    assert (d[-1] == 0).all()  # no age, no target
    # The own group always gets the most.
    assert [AGE_GROUPS[i] for i in d[:-1].argmax(axis=1)] == [age_to_group(a) for a in ages[:-1]]
    # A 29-year-old (centred at 29.5) is half a year from Middle Age: Phi(0.5 / 3) stays Young.
    np.testing.assert_allclose(d[3, 1:3], [0.5662, 0.4338], atol=1e-4)
    np.testing.assert_allclose(d[4], d[3])  # 29.9 is in its 30th year too
    # 18 and 17 mirror each other about the Child / Young bound (up to the little mass
    # that reaches Middle Age from 18).
    np.testing.assert_allclose(d[2, :2], d[1, 1::-1], atol=1e-4)
    # The wider sigma, the more mass leaves the group; a tiny one is one-hot.
    assert age_distribution([40], 8.0)[0, 2] < age_distribution([40], 3.0)[0, 2]
    np.testing.assert_allclose(age_distribution([40], 0.01)[0], [0, 0, 1, 0, 0], atol=1e-12)


@pytest.mark.parametrize("bad", [-1, 131, np.inf])
def test_age_distribution_rejects_impossible_ages(bad):
    with pytest.raises(ValueError, match="not a valid age"):
        age_distribution([30, bad], 3.0)


@pytest.mark.parametrize("sigma", [0, -2, "3", True, np.nan])
def test_bad_age_sigma_is_a_clear_error(sigma):
    est = MultiTaskFaceClassifier(image_size=8, filters=(2,), dense_units=(4,), epochs=1,
                                  age_sigma=sigma)
    with pytest.raises(ValueError, match="age_sigma"):
        est.fit(np.zeros((4, 8, 8), np.uint8), pd.DataFrame({"age": [20, 30, 40, 50]}))


def test_masked_crossentropy_uses_a_soft_target_where_given():
    from mtlfaces._losses import masked_crossentropy

    p = np.array([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.25, 0.25]], np.float32)
    soft = np.array([[0, 0.5, 0.5], [0, 0, 0], [0, 0, 0]], np.float32)  # row 2: one-hot
    y_true = np.concatenate([np.array([[1, 1], [2, 1], [-1, 1]], np.float32), soft], 1)
    got = np.asarray(masked_crossentropy()(y_true, p))
    # Row 0 soft, row 1 its class, row 2 missing; rescaled by 3 samples / 2 labelled.
    expected = np.array([-(0.5 * np.log(0.6) + 0.5 * np.log(0.3)), -np.log(0.6), 0]) * 1.5
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Without the soft columns the same rows are one-hot.
    np.testing.assert_allclose(np.asarray(masked_crossentropy()(y_true[:, :2], p))[0],
                               -np.log(0.6) * 1.5, rtol=1e-5)


def _fit_boundary_faces(age_sigma, labels):
    """A tiny network on uninformative images whose every face is a 29-year-old."""
    X = np.random.RandomState(0).randint(0, 256, (64, 8, 8)).astype(np.uint8)
    y = pd.DataFrame({"age": labels * 32, "gender": ["Female", "Male"] * 32})
    est = MultiTaskFaceClassifier(image_size=8, filters=(4,), dense_units=(8,), dropout=0.0,
                                  epochs=60, batch_size=64, learning_rate=0.03,
                                  validation_fraction=0, augment=False, age_sigma=age_sigma,
                                  random_state=0, verbose=0)
    return est.fit(X, y).predict_proba(X)[0].mean(axis=0)


def test_age_sigma_trains_towards_the_distribution_of_years():
    middle = AGE_GROUPS.index("Middle Age")
    # Ages in years with age_sigma: the network learns 29's spread (Young 0.57, Middle 0.43).
    spread = _fit_boundary_faces(3.0, [29, 29])
    assert 0.3 < spread[middle] < 0.55 and spread.argmax() == AGE_GROUPS.index("Young")
    # The same faces labelled by group name stay one-hot; so do years without age_sigma.
    with pytest.warns(UserWarning, match="no effect"):
        assert _fit_boundary_faces(3.0, ["Young", "Young"])[middle] < 0.1
    assert _fit_boundary_faces(None, [29, 29])[middle] < 0.1


def test_age_sigma_without_ages_in_years_warns():
    X = np.zeros((4, 8, 8), np.uint8)
    est = MultiTaskFaceClassifier(image_size=8, filters=(2,), dense_units=(4,), epochs=1,
                                  validation_fraction=0, age_sigma=3)
    with pytest.warns(UserWarning, match="age_sigma=3 has no effect"):
        est.fit(X, pd.DataFrame({"age": ["Young", "Old", "Child", None]}))


def test_validation_data_with_group_names_is_not_a_warning():
    import warnings

    X = np.random.RandomState(1).randint(0, 256, (8, 8, 8)).astype(np.uint8)
    est = MultiTaskFaceClassifier(image_size=8, filters=(2,), dense_units=(4,), epochs=1,
                                  age_sigma=3)
    with warnings.catch_warnings():
        # (Eight images are too few to learn or stop on, and the fit says so; not this.)
        warnings.filterwarnings("error", message=".*age_sigma")
        est.fit(X, pd.DataFrame({"age": [5, 20, 35, 50, 70, 29, 30, 44]}),
                validation_data=(X, pd.DataFrame({"age": ["Child", "Young"] * 4})))
    assert "val_loss" in est.history_


def test_with_age_in_years_puts_the_loaders_years_in_age():
    from mtlfaces.datasets import with_age_in_years

    y = pd.DataFrame({"age": ["Young", "Old", None, "Child"],
                      "age_years": [25.0, np.nan, np.nan, 3.0],
                      "emotion": [None, None, "Sad", None]})
    out = with_age_in_years(y)
    got = list(out["age"])
    assert got[:2] == [25.0, "Old"] and pd.isna(got[2]) and got[3] == 3.0
    assert list(y["age"].iloc[[0, 1, 3]]) == ["Young", "Old", "Child"]  # y is left as it was
    with pytest.raises(ValueError, match="no age label is in years"):
        with_age_in_years(y.assign(age_years=np.nan))
    with pytest.raises(ValueError, match="no age label is in years"):
        with_age_in_years(y.drop(columns="age_years"))
