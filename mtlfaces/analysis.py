"""Deprecated: the per-image analyser moved to :mod:`mtlfaces.pipeline`, tracking to
:mod:`mtlfaces.tracking`. Use :func:`mtlfaces.analyze` for answers.

Importing this module warns; every name it had still works.
"""

import warnings

from .pipeline import FaceAnalyzer, FaceResult  # noqa: F401
from .tracking import FaceTracker, _iou, _match, relabel, shift_boxes  # noqa: F401

warnings.warn("mtlfaces.analysis is deprecated and will be removed in 0.5: use "
              "mtlfaces.analyze() (or mtlfaces.pipeline.FaceAnalyzer, mtlfaces.tracking)",
              DeprecationWarning, stacklevel=2)
