"""scikit-learn's own estimator checks, on a tiny network, with every expected failure explained."""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from mtlfaces import HOGSVMClassifier, MultiTaskFaceClassifier

TINY_NET = dict(image_size=8, filters=(4,), dense_units=(16,), dropout=0.0, epochs=5,
                batch_size=64, augment=False, validation_fraction=0.0, learning_rate=0.01,
                random_state=0)

CLASSIFIER_XFAIL = {
    "check_sample_weight_equivalence_on_dense_data":
        "mini-batch SGD with shuffling is not equivalent to repeating weighted samples",
    # scikit-learn compares float64 outputs to 1e-7; the network computes in float32, and
    # where a face sits in a batch can move its probabilities in the last bits (seen on a
    # CPU without AVX-512: 3e-8 on one of 60 values). The same check at float32's
    # tolerance is test_predictions_do_not_depend_on_sample_order below.
    "check_methods_sample_order_invariance":
        "float32 network: the last bits of a face's probabilities can depend on its place "
        "in the batch (checked at float32's tolerance in this file)",
}
HOG_XFAIL = {}


def _expected(estimator):
    return CLASSIFIER_XFAIL if isinstance(estimator, MultiTaskFaceClassifier) else HOG_XFAIL


@parametrize_with_checks(
    [MultiTaskFaceClassifier(**TINY_NET), HOGSVMClassifier(image_size=16, pixels_per_cell=4)],
    expected_failed_checks=_expected,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_predictions_do_not_depend_on_sample_order():
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 255, (60, 8, 8)).astype(np.float32)
    y = np.where(X.mean(axis=(1, 2)) > 127, "a", "b")
    clf = MultiTaskFaceClassifier(**TINY_NET).fit(X, y)
    order = rng.permutation(len(X))
    p = clf.predict_proba(X)
    np.testing.assert_allclose(clf.predict_proba(X[order]), p[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X[order]), clf.predict(X)[order])
