"""mtlfaces: age group, gender and emotion for every face, with one multi-task network.

``import mtlfaces`` is light: TensorFlow, Keras and dlib are imported when a
class or function that needs them is first used.
"""

import importlib

from .tasks import AGE_GROUPS, EMOTIONS, FER2013_EMOTION_CODES, GENDERS, TASKS

__version__ = "0.3.1"

# name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    "analyze": ".pipeline",
    "Analyzer": ".pipeline",
    "MultiTaskFaceClassifier": "._classifier",
    "ARCHITECTURES": "._classifier",
    "load_model": "._classifier",
    "ModelFileError": "._serialization",
    "load_pretrained": "._pretrained",
    "PRETRAINED_MODEL_PATH": "._pretrained",
    "DescriptorReadout": ".descriptors",
    "load_pretrained_readout": ".descriptors",
    "FaceCropper": ".faces",
    "detect_faces": ".faces",
    "HOGTransformer": ".hog",
    "HOGSVMClassifier": ".hog",
}

__all__ = ["AGE_GROUPS", "EMOTIONS", "GENDERS", "TASKS", "FER2013_EMOTION_CODES",
           "__version__", *_LAZY]


#: Submodules reachable as attributes (``mtlfaces.distributed``), imported on first access.
_SUBMODULES = ("distributed",)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mtlfaces' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
