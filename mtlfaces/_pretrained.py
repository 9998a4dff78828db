"""The pretrained model bundled inside the package."""

import os

PRETRAINED_MODEL_PATH = os.path.join(os.path.dirname(__file__), "models", "pretrained.mtlfaces")


def load_pretrained():
    """Return the bundled, trained :class:`~mtlfaces.MultiTaskFaceClassifier`.

    Trained on UTKFace (age group, gender), FER2013 and CK+ (emotion); see
    MODEL_CARD.md for its accuracy and the data's research-only
    terms. It expects aligned face crops as :class:`~mtlfaces.FaceCropper`
    makes them (grayscale, any size; resized to 48×48). Nothing is downloaded.

    Returns
    -------
    MultiTaskFaceClassifier
        A new, fitted estimator on every call.
    """
    from ._classifier import load_model
    from ._serialization import ModelFileError

    if not os.path.exists(PRETRAINED_MODEL_PATH):
        raise ModelFileError(
            f"{PRETRAINED_MODEL_PATH}: the bundled model is missing from this installation; "
            "reinstall mtlfaces or rebuild it with recipes/train_pretrained.py"
        )
    return load_model(PRETRAINED_MODEL_PATH)
