"""Two-stage training: age + gender first, then grow an emotion head on the same trunk.

    python examples/two_stage_training.py [--quick]

Uses mtlfaces.datasets.make_shapes (synthetic images whose labels are visible
structure) so it runs anywhere; swap in load_utkface / load_fer2013 for real data.
"""

import argparse

import numpy as np

from mtlfaces import MultiTaskFaceClassifier
from mtlfaces.datasets import make_shapes


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    epochs = 6 if args.quick else 10  # 17 batches an epoch: 6 make the 100 steps a fit needs
    X, y = make_shapes(600, size=32, missing_gender=0.0)
    Xt, yt = make_shapes(200, size=32, seed=1, missing_gender=0.0)
    small = dict(image_size=32, filters=(16, 32), dense_units=(64,), augment=False,
                 validation_fraction=0.0, random_state=0)

    # Stage 1: age group and gender (think UTKFace).
    model = MultiTaskFaceClassifier(epochs=epochs, **small).fit(X, y[["age", "gender"]])
    conv1 = model.model_.get_layer("conv1").get_weights()[0].copy()
    print("stage 1 tasks:", model.tasks_, "score:", round(model.score(Xt, yt), 3),
          "(mean accuracy over its tasks on 200 held-out images; chance 0.35 for age "
          "group's 5 and gender's 2 classes)")

    # Stage 2: emotion only (think FER2013). warm_start keeps the trunk and the heads;
    # the new task gets a new head on the trained trunk.
    model.set_params(warm_start=True)
    model.fit(X, y[["emotion"]])
    moved = np.abs(model.model_.get_layer("conv1").get_weights()[0] - conv1).mean()
    print("stage 2 tasks:", model.tasks_, "score:", round(model.score(Xt, yt), 3),
          f"(chance 0.34 with emotion's 3 classes; the trunk's first weights moved by "
          f"{moved:.4f} on average: stage 2 refined the trunk, it did not start over)")
    print("labels of the first three held-out images (age group, gender, emotion):")
    print(model.predict(Xt[:3]))
    print("these images are synthetic shapes whose labels are visible structure, so a "
          "small network learns them fully; real faces are far harder (MODEL_CARD.md)")
    return model


if __name__ == "__main__":
    main()
