"""The examples keep running (their quick modes) and show what they say."""

import importlib.util
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")


def _load(folder, name):
    """Import ``<folder>/<name>.py`` as a module (the folder goes on sys.path)."""
    if os.path.join(ROOT, folder) not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, folder))
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}",
                                                  os.path.join(ROOT, folder, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_predict_photo_finds_her():
    faces = _load("examples", "predict_photo").main([])
    assert len(faces) == 1 and faces[0].labels["gender"] == "Female"


def test_example_pipeline_gridsearch():
    grid = _load("examples", "pipeline_gridsearch").main(["--quick"])
    # Mechanics only: in quick mode (3 epochs, 100 faces) the network is at chance level.
    assert len(grid.cv_results_["mean_test_score"]) == 2
    assert grid.best_params_["clf__learning_rate"] in (1e-3, 3e-3)
    assert grid.predict([np.zeros((100, 100), np.uint8)]).shape == (1, 1)


def test_example_two_stage():
    model = _load("examples", "two_stage_training").main(["--quick"])
    assert model.tasks_ == ["age", "gender", "emotion"]


def test_example_hog_svm_vs_cnn():
    scores = _load("examples", "hog_svm_vs_cnn").main(["--quick"])
    assert set(scores) == {"HOG + linear SVM", "HOG + RBF SVM", "CNN"}
    # make_shapes: mean chance over age (1/5), gender (1/2), emotion (1/3) is 0.34
    assert scores["HOG + linear SVM"] > 0.6 and scores["HOG + RBF SVM"] > 0.6


def test_example_save_and_load():
    assert _load("examples", "save_and_load").main(["--quick"]).tasks_ == ["age", "gender",
                                                                            "emotion"]
