"""Save a model without pickle, load it back, keep training.

    python examples/save_and_load.py [--quick]
"""

import argparse
import os
import tempfile

import numpy as np

from mtlfaces import MultiTaskFaceClassifier, load_model
from mtlfaces.datasets import make_shapes


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    X, y = make_shapes(300, size=32)
    model = MultiTaskFaceClassifier(image_size=32, filters=(8, 16), dense_units=(32,),
                                    epochs=6 if args.quick else 12, validation_fraction=0,
                                    random_state=0).fit(X, y)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "shapes.mtlfaces")
        model.save(path)  # a zip of model.keras + mtlfaces.json: no pickle inside
        print(f"saved {os.path.getsize(path) / 1e3:.0f} kB")
        again = load_model(path)  # safe: refuses files that would run code
        assert np.array_equal(again.predict(X), model.predict(X))
        again.partial_fit(X, y)  # and it keeps training
    print("reloaded model predicts the same labels and keeps training (partial_fit "
          "continues its network)")
    return again


if __name__ == "__main__":
    main()
