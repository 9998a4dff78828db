"""An 8-bit integer copy of a fitted network, for fast inference on CPUs.

:meth:`MultiTaskFaceClassifier.quantize` converts the Keras network to a TensorFlow Lite
flatbuffer with int8 weights and activations, calibrated on images the caller gives (faces
like those it will classify; not validation faces). TensorFlow Lite's XNNPACK kernels run it
several times faster than the Keras network on this CPU, and the answers barely move
(``docs/speed.md`` measures both). The flatbuffer is data, not code: it travels inside the
model file as ``model.int8.tflite`` and is checked against the document like the network.
"""

import threading

import numpy as np

_DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy")
#: Threads each interpreter uses: two, the cores of the machine this was measured on
#: (docs/speed.md); a Dask worker sets its own share (mtlfaces.distributed.limit_threads).
NUM_THREADS = 2


def _float32_config(obj):
    """A Keras config with every mixed-precision dtype policy replaced by float32 (TensorFlow
    Lite converts float32 graphs; bfloat16 ops have no TFLite kernels)."""
    if isinstance(obj, dict):
        if obj.get("class_name") in _DTYPE_POLICIES:
            return "float32"
        return {k: _float32_config(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_float32_config(v) for v in obj]
    if obj in ("mixed_bfloat16", "mixed_float16"):
        return "float32"
    return obj


def float32_copy(model):
    """A copy of ``model`` computing in float32 throughout, with the same weights."""
    import keras

    copy = keras.Model.from_config(_float32_config(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def quantize(model, tasks, images, max_calibration=500):
    """The int8 TFLite flatbuffer (bytes) of ``model``, calibrated on ``images`` (float32
    batches as the network takes them, (n, h, w, c) in [0, 1]). Its outputs are the
    ``tasks``' probabilities, in that order."""
    import tensorflow as tf

    from ._native import captured_stderr

    copy = float32_copy(model)
    spec = tf.TensorSpec((None,) + tuple(int(d) for d in model.input_shape[1:]), tf.float32)
    # A tuple in the tasks' order: a dict's outputs would come out sorted by name.
    fn = tf.function(lambda x: tuple(copy(x, training=False)[t] for t in tasks),
                     input_signature=[spec])
    pick = np.linspace(0, len(images) - 1, min(max_calibration, len(images))).astype(int)

    def representative():
        for i in pick:
            yield [images[i:i + 1]]

    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    # Weights (and any other state, e.g. a random layer's seed) become constants first:
    # TFLite's calibrator cannot read resource variables.
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    with captured_stderr():
        return converter.convert()


def interpreter_class():
    """TensorFlow Lite's interpreter: LiteRT's (``ai_edge_litert``) where installed, else
    TensorFlow's ``tf.lite.Interpreter`` (deprecated by TensorFlow in favour of LiteRT, so
    its warning is silenced here). Raises ImportError when neither exists."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    import tensorflow as tf

    from ._warnings import ignoring

    cls = getattr(getattr(tf, "lite", None), "Interpreter", None)
    if cls is None:
        raise ImportError("no TensorFlow Lite interpreter: pip install ai-edge-litert, or "
                          "predict with inference='keras'")

    class Interpreter(cls):
        def __init__(self, *args, **kwargs):
            with ignoring(message=r"(?s).*tf\.lite\.Interpreter is deprecated",
                          category=UserWarning):  # Analyzers make these on many threads
                super().__init__(*args, **kwargs)
    return Interpreter


class Int8Network:
    """Runs an int8 flatbuffer: ``net(x)`` gives {task: (n, k) float probabilities}.

    Parameters
    ----------
    blob : bytes
        The flatbuffer, as :func:`quantize` writes it.
    tasks, widths : sequence
        The estimator's tasks, in the order of the network's outputs (:func:`quantize`
        writes them so), and their class counts, which the outputs must have.
    """

    def __init__(self, blob, tasks, widths):
        self.blob = blob if isinstance(blob, bytes) else bytes(blob)
        self._lock = threading.Lock()
        self._interpreters = {}  # thread id -> interpreter
        self.tasks = list(tasks)
        self.widths = [int(w) for w in widths]
        try:
            interp = self._interpreter()
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"not a readable TensorFlow Lite network ({exc})") from None
        shapes = [int(o["shape"][-1]) for o in interp.get_output_details()]
        self.input_shape = tuple(int(d) for d in interp.get_input_details()[0]["shape"][1:])
        if shapes != self.widths:
            raise ValueError(f"the int8 network's outputs are {shapes} classes wide; the "
                             f"tasks {self.tasks} have {self.widths}")
        self.order = dict(zip(self.tasks, range(len(shapes))))

    def _interpreter(self):
        """This thread's interpreter (TensorFlow Lite interpreters are not thread-safe)."""
        from ._native import captured_stderr

        thread = threading.get_ident()
        with self._lock:
            interp = self._interpreters.get(thread)
        if interp is None:
            with captured_stderr():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
                interp = interpreter_class()(model_content=self.blob, num_threads=NUM_THREADS)
                interp.allocate_tensors()
            with self._lock:
                self._interpreters[thread] = interp
        return interp

    def __call__(self, x):
        interp = self._interpreter()
        inp = interp.get_input_details()[0]
        x = np.ascontiguousarray(x, dtype=np.float32)
        if tuple(inp["shape"]) != x.shape:
            interp.resize_tensor_input(inp["index"], x.shape)
            interp.allocate_tensors()
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        outs = interp.get_output_details()
        return {t: interp.get_tensor(outs[k]["index"]).astype(np.float64)
                for t, k in self.order.items()}
