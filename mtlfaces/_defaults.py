"""Defaults shared by the library and the command line (light: no heavy imports, so
``mtlfaces --help`` shows them without loading NumPy's neighbours)."""

#: Minimum HOG detector score where none is given, everywhere (detect_faces, FaceCropper,
#: analyze, the CLI). dlib's own default (0) lets through weak false detections, such as the
#: mission patch of ``skimage.data.astronaut()`` saved as JPEG (score 0.04), or a face in
#: ``skimage.data.coffee()``; real faces usually score above 0.5.
DEFAULT_THRESHOLD = 0.2

#: Images with more pixels than this are refused before they are decoded (an 8000×6000
#: photo has 48 million); ``max_pixels`` raises it where more is needed. Decoding costs
#: 3 bytes a pixel, and detection at full resolution several times that.
MAX_PIXELS = 50_000_000

#: Videos and webcams: faces are detected on every this-many-th frame and followed in
#: between (``every``, ``--every``). Two keeps a three-face 640×480 clip above 30 frames/s
#: on two cores with no more label flicker than detecting on every frame (docs/speed.md).
DEFAULT_EVERY = 2
