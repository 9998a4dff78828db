"""The examples keep running (their quick modes) and show what they say."""

import os

import numpy as np

from .conftest import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")


def test_example_predict_photo_finds_her():
    import mtlfaces
    from skimage import data

    faces = load_script("examples", "predict_photo").main([])
    assert len(faces) == 1 and faces[0]["gender"] == "Female"
    assert faces == mtlfaces.analyze(data.astronaut())  # the example is the one route


def test_example_pipeline_gridsearch():
    grid = load_script("examples", "pipeline_gridsearch").main(["--quick"])
    # Even the quick mode learns (chance is 0.5: half the faces are above the median).
    assert grid.best_score_ > 0.65, grid.cv_results_["mean_test_score"]
    assert len(grid.cv_results_["mean_test_score"]) == 2
    assert grid.best_params_["clf__learning_rate"] in (1e-3, 3e-3)
    assert grid.predict([np.zeros((100, 100), np.uint8)]).shape == (1, 1)


def test_example_two_stage():
    model = load_script("examples", "two_stage_training").main(["--quick"])
    assert model.tasks_ == ["age", "gender", "emotion"]


def test_example_hog_svm_vs_cnn():
    scores = load_script("examples", "hog_svm_vs_cnn").main(["--quick"])
    assert set(scores) == {"HOG + linear SVM", "HOG + RBF SVM", "CNN"}
    # make_shapes: mean chance over age (1/5), gender (1/2), emotion (1/3) is 0.34
    assert scores["HOG + linear SVM"] > 0.6 and scores["HOG + RBF SVM"] > 0.6
    assert scores["CNN"] > 0.6  # the quick mode shows the CNN learning too


def test_example_save_andload_script():
    assert load_script("examples", "save_and_load").main(["--quick"]).tasks_ == ["age", "gender",
                                                                            "emotion"]
