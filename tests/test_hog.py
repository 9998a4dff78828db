import io

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from mtlfaces import HOGSVMClassifier, HOGTransformer


def test_hog_transformer_shape_and_statelessness(shapes):
    X, _ = shapes
    hog = HOGTransformer(image_size=32, pixels_per_cell=8, cells_per_block=2)
    F = hog.fit_transform(X[:5])
    # 32/8 = 4 cells per side -> 3x3 blocks of 2x2 cells x 9 orientations
    assert F.shape == (5, 3 * 3 * 2 * 2 * 9)
    np.testing.assert_allclose(HOGTransformer(image_size=32).transform(X[:5]), F)
    with pytest.raises(ValueError, match="no HOG block fits"):
        HOGTransformer(image_size=8, pixels_per_cell=8, cells_per_block=2).fit(X)


def test_hog_in_pipeline_and_gridsearch(shapes):
    X, y = shapes
    target = np.asarray(y["emotion"])
    pipe = make_pipeline(HOGTransformer(image_size=32), LinearSVC())
    grid = GridSearchCV(pipe, {"hogtransformer__pixels_per_cell": [4, 8]}, cv=3).fit(X, target)
    assert grid.best_score_ > 0.8


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_baselines_learn_multi_task_with_missing_labels(shapes, shapes_test, kernel):
    X, y = shapes
    assert y["gender"].isna().mean() > 0.3
    clf = HOGSVMClassifier(kernel=kernel, image_size=32, random_state=0).fit(X, y)
    Xt, yt = shapes_test
    assert clf.tasks_ == ["age", "gender", "emotion"]
    pred = clf.predict(Xt)
    assert pred.shape == (len(Xt), 3)
    proba = clf.predict_proba(Xt)
    assert [p.shape[1] for p in proba] == [5, 2, 7]
    np.testing.assert_allclose(proba[2].sum(axis=1), 1.0)
    # chance: 1/5, 1/2, 1/3 -> mean 0.34
    assert clf.score(Xt, yt) > 0.7
    buf = io.BytesIO()
    joblib.dump(clf, buf)
    buf.seek(0)
    again = joblib.load(buf)
    np.testing.assert_array_equal(again.predict(Xt), pred)
