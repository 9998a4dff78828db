"""Keras builders for the multi-task network: one shared trunk, one softmax head per task.

Builders are module-level functions of plain data (picklable, usable with
``n_jobs > 1``) that return functional models whose outputs are a dict keyed by
task name.
"""

TRUNK_OUTPUT = "trunk_features"


def _dtype(policy):
    return policy or None


def build_trunk(inputs, filters, augment, seed, dtype_policy=None, convs_per_block=1):
    """Conv blocks ((Conv 3×3 same → BatchNorm → ReLU) × ``convs_per_block`` → MaxPool 2×2),
    then Flatten.

    Augmentation layers (horizontal flip, small rotations and shifts) sit at the
    front; they are identity at inference, so the saved model needs nothing else.
    """
    from keras import layers

    x = inputs
    if augment:
        x = layers.RandomFlip("horizontal", seed=seed, name="augment_flip")(x)
        x = layers.RandomRotation(0.03, fill_mode="nearest", seed=seed, name="augment_rotate")(x)
        x = layers.RandomTranslation(
            0.08, 0.08, fill_mode="nearest", seed=seed, name="augment_shift"
        )(x)
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
