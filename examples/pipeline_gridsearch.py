"""A Pipeline of the face cropper and the classifier, tuned with GridSearchCV.

    python examples/pipeline_gridsearch.py [--quick]

Uses scikit-image's LFW subset (real 25x25 face crops). LFW has no age/gender/
emotion labels, so this example learns a stand-in task — "is the face brighter
than the median face?" — to show the mechanics; use your own labelled photos.
"""

import argparse

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from mtlfaces import FaceCropper, MultiTaskFaceClassifier


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import cv2
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]
    images = [cv2.resize((f * 255).astype(np.uint8), (100, 100)) for f in faces]
    brightness = np.array([f.mean() for f in faces])
    y = pd.DataFrame({"bright": np.where(brightness > np.median(brightness), "yes", "no")})
    pipe = Pipeline([
        # These are face crops already: where the detector finds no face, use the centred
        # square (on_missing="center"; the default raises, naming the images).
        ("crop", FaceCropper(size=32, on_missing="center")),
        # 50 faces per training fold (67 with 3 folds): batches of 8 give 7 to 9 optimizer
        # steps an epoch, and 15 epochs the 100 steps a fit needs at the least (fewer warn).
        ("clf", MultiTaskFaceClassifier(tasks=("bright",), image_size=32, filters=(8, 16),
                                        dense_units=(32,), batch_size=8,
                                        epochs=15 if args.quick else 30,
                                        validation_fraction=0, random_state=0)),
    ])
    grid = GridSearchCV(pipe, {"clf__learning_rate": [1e-3, 3e-3]},
                        cv=KFold(2 if args.quick else 3, shuffle=True, random_state=0))
    grid.fit(images, y)
    print(f"best parameters: {grid.best_params_}, cross-validated accuracy "
          f"{grid.best_score_:.3f} (chance: 0.5, half the faces are brighter than the median)")
    return grid


if __name__ == "__main__":
    main()
