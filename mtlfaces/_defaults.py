"""Defaults shared by the library and the command line (light: no heavy imports, so
``mtlfaces --help`` shows them without loading NumPy's neighbours)."""

#: The detectors of the analyze route (Analyzer, analyze, FaceAnalyzer, ``--detector``): dlib's
#: HOG, its CNN, or "auto", HOG with the CNN's search of a small still image where HOG finds
#: no face (``mtlfaces.pipeline.RETRY_SIDE``). The first is the default.
DETECTORS = ("auto", "hog", "cnn")

#: Minimum HOG detector score where none is given, everywhere (detect_faces, FaceCropper,
#: analyze, the CLI). dlib's own default (0) lets through weak false detections, such as the
#: mission patch of ``skimage.data.astronaut()`` saved as JPEG (score 0.04), or a face in
#: ``skimage.data.coffee()``; real faces usually score above 0.5.
DEFAULT_THRESHOLD = 0.2

#: A small still image in which the detector keeps no face is searched again at upsample 1
#: (``mtlfaces.pipeline.RETRY_SIDE``); if no face there reaches the threshold either, that
#: second search keeps its best HOG detection down to the threshold minus this (-0.2 by
#: default). ``benchmarks/bench_detection.py`` measures the trade (its HOG-only rows):
#: many more LFW photos get a face, with no false detection on its face-free images, where
#: lowering the threshold of the first search instead lets the astronaut's mission patch
#: through.
RETRY_THRESHOLD_DROP = 0.4

#: Images with more pixels than this are refused before they are decoded (an 8000×6000
#: photo has 48 million); ``max_pixels`` raises it where more is needed. Decoding costs
#: 3 bytes a pixel, and detection at full resolution several times that.
MAX_PIXELS = 50_000_000

#: Videos and webcams: faces are detected on every this-many-th frame and followed in
#: between (``every``, ``--every``). Two keeps a three-face 640×480 clip above 30 frames/s
#: on two cores with no more label flicker than detecting on every frame (docs/speed.md).
DEFAULT_EVERY = 2
