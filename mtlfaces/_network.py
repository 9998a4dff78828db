"""Keras builders for the multi-task network: one shared trunk, one softmax head per task.

Builders are module-level functions of plain data (picklable, usable with
``n_jobs > 1``) that return functional models whose outputs are a dict keyed by
task name.
"""

import numbers

import numpy as np

TRUNK_OUTPUT = "trunk_features"


def _dtype(policy):
    return policy or None


# What ``augment=True`` means; a dict given as ``augment`` overrides these entries.
AUGMENT_DEFAULTS = {"flip": True, "rotation": 0.03, "shift": 0.08, "zoom": 0.0,
                    "contrast": 0.0, "erase": 0.0, "shift_interpolation": "nearest"}
_AUGMENT_LIMITS = {"rotation": 0.5, "shift": 1.0, "zoom": 1.0, "contrast": 1.0, "erase": 1.0}
_AUGMENT_NONE = {k: (False if k == "flip" else 0.0) for k in AUGMENT_DEFAULTS}
_AUGMENT_NONE["shift_interpolation"] = "nearest"


def augmentation_spec(augment, owner="MultiTaskFaceClassifier"):
    """The full augmentation settings an ``augment`` parameter stands for.

    ``True`` gives :data:`AUGMENT_DEFAULTS`, ``False``/``None`` turns every
    transform off, and a dict overrides the defaults entry by entry (set an
    entry to 0 or False to turn that transform off). Raises ValueError naming
    the bad entry.
    """
    if augment is None or augment is False:
        return dict(_AUGMENT_NONE)
    if augment is True:
        return dict(AUGMENT_DEFAULTS)
    if not isinstance(augment, dict):
        raise ValueError(f"{owner}: augment={augment!r}; expected True, False or a dict "
                         f"with entries from {sorted(AUGMENT_DEFAULTS)}")
    unknown = sorted(set(augment) - set(AUGMENT_DEFAULTS))
    if unknown:
        raise ValueError(f"{owner}: augment has unknown entr{'y' if len(unknown) == 1 else 'ies'} "
                         f"{unknown}; known: {sorted(AUGMENT_DEFAULTS)}")
    spec = dict(AUGMENT_DEFAULTS)
    for key, value in augment.items():
        if key == "flip":
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{owner}: augment['flip']={value!r}; expected True or False")
            spec[key] = bool(value)
            continue
        if key == "shift_interpolation":
            if value not in ("nearest", "bilinear"):
                raise ValueError(f"{owner}: augment['shift_interpolation']={value!r}; expected "
                                 "'nearest' (whole-pixel shifts) or 'bilinear'")
            spec[key] = value
            continue
        limit = _AUGMENT_LIMITS[key]
        closed = key in ("contrast", "erase")  # a probability / relative change may be 1
        number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        if not number or not (0 <= value <= limit if closed else 0 <= value < limit):
            interval = f"[0, {limit}]" if closed else f"[0, {limit})"
            raise ValueError(f"{owner}: augment[{key!r}]={value!r}; expected a number in "
                             f"{interval}")
        spec[key] = float(value)
    if not spec["shift"]:
        spec["shift_interpolation"] = "nearest"  # no shift layer: nothing to interpolate
    return spec


def augmentation_layers(spec, seed):
    """Keras preprocessing layers for ``spec`` (inputs scaled to [0, 1]); none for a zero entry.

    rotation is a fraction of a full turn (0.03 = ±10.8°), shift and zoom fractions
    of the image size (zoom in and out), contrast the largest relative change,
    erase the probability of blanking a random rectangle (2–20 % of the image).
    Shifts move by whole pixels unless ``shift_interpolation`` is "bilinear" (how
    mtlfaces 0.1.0 shifted); rotation and zoom resample (bilinear), which blurs a
    little.
    """
    from keras import layers

    out = []
    if spec["flip"]:
        out.append(layers.RandomFlip("horizontal", seed=seed, name="augment_flip"))
    if spec["rotation"]:
        out.append(layers.RandomRotation(spec["rotation"], fill_mode="nearest", seed=seed,
                                         name="augment_rotate"))
    if spec["shift"]:
        # Whole-pixel shifts (nearest): a bilinear shift resamples, and with the rotation
        # that made training images 44 % less sharp (mean |Laplacian|) than the sharp
        # crops the model sees at inference.
        out.append(layers.RandomTranslation(spec["shift"], spec["shift"], fill_mode="nearest",
                                            interpolation=spec["shift_interpolation"], seed=seed,
                                            name="augment_shift"))
    if spec["zoom"]:
        out.append(layers.RandomZoom(spec["zoom"], fill_mode="nearest", seed=seed,
                                     name="augment_zoom"))
    if spec["contrast"]:
        out.append(layers.RandomContrast(spec["contrast"], value_range=(0, 1), seed=seed,
                                         name="augment_contrast"))
    if spec["erase"]:
        out.append(layers.RandomErasing(spec["erase"], scale=(0.02, 0.2), value_range=(0, 1),
                                        seed=seed, name="augment_erase"))
    return out


def allow_xla(model):
    """Mark ``model``'s augmentation layers as compilable with XLA; returns ``model``.

    Keras compiles no training step with XLA when a single layer says it does not support
    it, and RandomTranslation and RandomZoom say so (for TensorFlow's XLA, which lacks their
    image transform). On the JAX backend that leaves every step running op by op, about
    0.6 s a step on an H200 against 3 ms compiled (research/results/gpu_h200_jax_eager.log);
    their JAX operations compile, so on JAX the estimator calls this before compiling.
    """
    for layer in model.layers:
        if layer.name.startswith("augment_"):
            layer.supports_jit = True
    return model


def _largest(value):
    return float(np.max(np.abs(np.asarray(value, dtype=float))))


def model_augmentation(model):
    """The augmentation settings a built network carries (read from its layers)."""
    spec = dict(_AUGMENT_NONE)
    keys = {"augment_rotate": ("rotation", "factor"), "augment_shift": ("shift", "height_factor"),
            "augment_zoom": ("zoom", "height_factor"), "augment_contrast": ("contrast", "factor"),
            "augment_erase": ("erase", "factor")}
    for layer in model.layers:
        if layer.name == "augment_flip":
            spec["flip"] = True
        elif layer.name in keys:
            entry, option = keys[layer.name]
            config = layer.get_config()
            spec[entry] = _largest(config[option])
            if entry == "shift":
                spec["shift_interpolation"] = config.get("interpolation", "bilinear")
    return spec


def same_augmentation(a, b):
    """Whether two augmentation specs are the same (up to float rounding in configs)."""
    return set(a) == set(b) and all(
        abs(a[k] - b[k]) < 1e-6 if isinstance(a[k], float) else a[k] == b[k] for k in a)


def transfer_weights(source, target):
    """Copy every weighted layer of ``source`` into the layer of the same name in ``target``.

    Returns ``target``. Raises ValueError when the two networks differ in anything
    but weightless layers (augmentation, dropout), naming the first difference.
    """
    def weighted(model):
        return {layer.name: layer for layer in model.layers if layer.weights}

    src, dst = weighted(source), weighted(target)
    if set(src) != set(dst):
        missing = sorted(set(src) ^ set(dst))
        raise ValueError(f"the networks differ in layers {missing[:5]}")
    for name, layer in src.items():
        values = layer.get_weights()
        shapes = [tuple(w.shape) for w in dst[name].weights]
        if [v.shape for v in values] != shapes:
            raise ValueError(f"layer {name!r} has weights of shapes "
                             f"{[v.shape for v in values]} here and {shapes} in the new network")
        dst[name].set_weights(values)
    return target


def build_trunk(inputs, filters, augment, seed, dtype_policy=None, convs_per_block=1):
    """Conv blocks ((Conv 3×3 same → BatchNorm → ReLU) × ``convs_per_block`` → MaxPool 2×2),
    then Flatten.

    Augmentation layers (:func:`augmentation_layers` for ``augment``) sit at the
    front; they are identity at inference, so the saved model needs nothing else.
    """
    from keras import layers

    x = inputs
    for layer in augmentation_layers(augmentation_spec(augment), seed):
        x = layer(x)
    for i, n_filters in enumerate(filters):
        for j in range(convs_per_block):
            # One conv per block keeps the names conv1, bn1, ... of earlier model files.
            suffix = f"{i + 1}" if convs_per_block == 1 else f"{i + 1}_{j + 1}"
            x = layers.Conv2D(
                n_filters, 3, padding="same", use_bias=False, name=f"conv{suffix}",
                dtype=_dtype(dtype_policy),
            )(x)
            # momentum 0.9 (Keras defaults to 0.99): the moving statistics used at inference
            # settle within ~50 steps, so short trainings (few epochs, small data) predict
            # sensibly; with 0.99 a 200-step training still predicted a constant class.
            x = layers.BatchNormalization(momentum=0.9, name=f"bn{suffix}",
                                          dtype=_dtype(dtype_policy))(x)
            x = layers.Activation("relu", name=f"relu{suffix}", dtype=_dtype(dtype_policy))(x)
        if x.shape[1] >= 2 and x.shape[2] >= 2:
            x = layers.MaxPooling2D(2, name=f"pool{i + 1}", dtype=_dtype(dtype_policy))(x)
    return layers.Flatten(name=TRUNK_OUTPUT, dtype=_dtype(dtype_policy))(x)


def build_head(features, task, n_classes, dense_units, dropout, seed, dtype_policy=None):
    """Dense → Dropout per entry of ``dense_units``, then a float32 softmax named ``task``."""
    from keras import layers

    x = features
    for j, units in enumerate(dense_units):
        x = layers.Dense(units, activation="relu", name=f"{task}_dense{j + 1}",
                         dtype=_dtype(dtype_policy))(x)
        if dropout:
            x = layers.Dropout(dropout, seed=None if seed is None else seed + j,
                               name=f"{task}_dropout{j + 1}")(x)
    # Softmax in float32 even under mixed precision: bf16 probabilities are too coarse.
    return layers.Dense(n_classes, activation="softmax", name=task, dtype="float32")(x)


def build_multitask_model(input_shape, task_classes, filters=(32, 64, 128, 256),
                          dense_units=(256, 128), dropout=0.3, augment=True,
                          seed=None, dtype_policy=None, convs_per_block=1):
    """Build the shared-trunk multi-task network.

    Parameters
    ----------
    input_shape : tuple of int
        (height, width, channels).
    task_classes : dict of str to int
        Number of classes per task; one head per entry, in order.
    filters, dense_units, dropout, augment, seed, dtype_policy, convs_per_block
        See :class:`mtlfaces.MultiTaskFaceClassifier`.

    Returns
    -------
    keras.Model
        Outputs: dict ``{task: (n, n_classes) softmax}``.
    """
    import keras

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    features = build_trunk(inputs, filters, augment, seed, dtype_policy, convs_per_block)
    outputs = {
        task: build_head(features, task, n, dense_units, dropout, seed, dtype_policy)
        for task, n in task_classes.items()
    }
    return keras.Model(inputs, outputs, name="mtlfaces")


def add_heads(model, task_classes, dense_units=(256, 128), dropout=0.3, seed=None,
              dtype_policy=None):
    """Return a model with new heads grown on ``model``'s trunk.

    The trunk and the existing heads are the same layer objects (same weights),
    so training the result keeps training them.
    """
    import keras

    features = model.get_layer(TRUNK_OUTPUT).output
    outputs = dict(model.output) if isinstance(model.output, dict) else {
        name: out for name, out in zip(model.output_names, model.outputs)
    }
    for task, n in task_classes.items():
        outputs[task] = build_head(features, task, n, dense_units, dropout, seed, dtype_policy)
    return keras.Model(model.input, outputs, name=model.name)


def trunk_layer_names(model):
    """Names of the layers that belong to the trunk (everything not in a head)."""
    heads = set(model.output.keys()) if isinstance(model.output, dict) else set(model.output_names)
    return [
        layer.name for layer in model.layers
        if not any(layer.name == t or layer.name.startswith(t + "_") for t in heads)
    ]


def network_architecture(model):
    """``{"filters", "convs_per_block", "dense_units"}`` a network was built with, read
    from its layers (so a warm-started fit can tell when the parameters say otherwise)."""
    from keras import layers

    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    blocks = {}
    for layer in convs:
        block = layer.name[len("conv"):].split("_")[0]
        blocks.setdefault(block, []).append(int(layer.filters))
    heads = list(model.output.keys()) if isinstance(model.output, dict) else list(
        model.output_names)
    first = heads[0] if heads else ""
    dense = [int(layer.units) for layer in model.layers
             if isinstance(layer, layers.Dense) and layer.name.startswith(f"{first}_dense")]
    return {"filters": tuple(f[0] for f in blocks.values()),
            "convs_per_block": max((len(f) for f in blocks.values()), default=1),
            "dense_units": tuple(dense)}
