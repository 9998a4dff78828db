"""``mtlfaces serve``: the model kept warm behind an HTTP API and a web page.

An ASGI application on Starlette, served by uvicorn. Starlette rather than FastAPI: the API
is four routes with hand-checked inputs, so FastAPI's pydantic layer would add a dependency
and a second validation vocabulary for nothing; the OpenAPI document is written out below.

Routes
------
``POST /v1/analyze``
    An image as the raw request body or as a multipart upload (field ``file``). Query
    options as ``mtlfaces predict`` has them: ``crops``, ``readout`` (auto/true/false),
    ``threshold``, ``upsample``. Answers the image size, every face (box, pose, labels,
    probabilities and full distributions, as :func:`mtlfaces.analyze` records them) and
    timings.
``GET /v1/health``, ``GET /v1/model``, ``GET /openapi.json``, ``GET /`` (the page).

The model, the read-out and dlib's models load once per worker process, at start-up. One
engine thread per process detects faces (dlib is not thread-safe) and classifies the faces of
concurrent requests in one network call (:mod:`mtlfaces._engine`). Uploads over
``max_upload_bytes`` or ``max_pixels`` get 413, non-images 400, bad options 422, a full queue
503 with ``Retry-After``, a request over ``timeout_s`` 504; every error is JSON
``{"error": ...}``. With a token, ``/v1/`` requests other than ``/v1/health`` need
``Authorization: Bearer TOKEN`` (401 otherwise). No CORS headers unless origins are given.
"""

import asyncio
import hmac
import importlib.metadata
import json
import os
import time
from pathlib import Path

from ._defaults import DEFAULT_THRESHOLD

STATIC = Path(__file__).parent / "static"
#: Defaults of :func:`create_app`.
MAX_UPLOAD_BYTES = 20 * 2**20
SERVICE_MAX_PIXELS = 40_000_000
TIMEOUT_S = 30.0


class _Reject(Exception):
    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _flag(value, name):
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise _Reject(422, f"{name}={value!r}: expected true or false")


def parse_options(query, defaults):
    """:class:`~mtlfaces._engine.Options` from the query string, or 422 naming the option."""
    from ._engine import Options

    known = {"crops", "readout", "threshold", "upsample"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise _Reject(422, f"unknown option(s) {unknown}; known: {sorted(known)}")
    options = Options(threshold=defaults.threshold, upsample=defaults.upsample)
    if "crops" in query:
        options.crops = _flag(query["crops"], "crops")
    if "readout" in query:
        options.readout = "auto" if query["readout"].lower() == "auto" else _flag(
            query["readout"], "readout")
    if "threshold" in query:
        try:
            options.threshold = float(query["threshold"])
        except ValueError:
            raise _Reject(422, f"threshold={query['threshold']!r}: expected a number") from None
        if not -5 <= options.threshold <= 5:
            raise _Reject(422, f"threshold={options.threshold}: expected -5 to 5")
    if "upsample" in query:
        if query["upsample"] not in ("0", "1", "2"):
            raise _Reject(422, f"upsample={query['upsample']!r}: expected 0, 1 or 2")
        options.upsample = int(query["upsample"])
    return options


async def _read_body(request, limit):
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Reject(413, f"the upload is {int(declared):,} bytes, over the limit of "
                           f"{limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Reject(413, f"the upload is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _image_bytes(request, limit):
    """The uploaded image's bytes and name, from a raw body or a multipart form."""
    body = await _read_body(request, limit)
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        return body, "upload"
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form()
    field = form.get("file") or form.get("image")
    if not isinstance(field, UploadFile):
        raise _Reject(400, "multipart upload without a 'file' field")
    return await field.read(), field.filename or "upload"


def _model_info(classifier, bundled):
    from .tasks import classes_by_task

    info = {"version": importlib.metadata.version("mtlfaces"),
            "model": "bundled" if bundled else "custom",
            "tasks": list(classifier.tasks_),
            "classes": {t: [str(c) for c in v] for t, v in classes_by_task(classifier).items()},
            "input": list(classifier.model_.input_shape[1:]),
            "inference": "int8" if classifier._int8_network() is not None else "keras",
            "mirror_averaging": bool(classifier.test_time_flip)}
    card = Path(__file__).parent / "models" / "model_card.json"
    if bundled and card.exists():
        info["validation_accuracy"] = json.loads(card.read_text())
    return info


def openapi():
    """The OpenAPI 3.1 document of the service."""
    error = {"type": "object", "properties": {"error": {"type": "string"}}}
    options = [{"name": n, "in": "query", "required": False, "schema": s, "description": d}
               for n, s, d in (
                   ("crops", {"type": "boolean"}, "The image is one face crop."),
                   ("readout", {"type": "string", "enum": ["auto", "true", "false"]},
                    "Average dlib's descriptor read-out into age group and gender."),
                   ("threshold", {"type": "number"}, "Minimum detector score."),
                   ("upsample", {"type": "integer", "enum": [0, 1, 2]},
                    "Upsample before detecting (smaller faces, slower)."))]
    responses = {str(code): {"description": text, "content": {"application/json": {
        "schema": error}}} for code, text in (
            (400, "Not a readable image"), (401, "Missing or wrong token"),
            (413, "Upload or image too large"), (422, "Bad option"),
            (503, "Queue full: retry after Retry-After seconds"), (504, "Timed out"))}
    responses["200"] = {"description": "Every face of the image", "content": {
        "application/json": {"schema": {"type": "object", "properties": {
            "image": {"type": "object"}, "faces": {"type": "array"},
            "timings": {"type": "object"}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "mtlfaces", "version": importlib.metadata.version("mtlfaces"),
                 "description": "Age group, gender and emotion for every face of an image."},
        "paths": {
            "/v1/analyze": {"post": {
                "summary": "Analyze one image (raw body or multipart field 'file')",
                "parameters": options,
                "requestBody": {"content": {
                    "image/*": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                        "file": {"type": "string", "format": "binary"}}}}}},
                "responses": responses}},
            "/v1/health": {"get": {"summary": "Liveness and queue length",
                                   "responses": {"200": {"description": "ok"}}}},
            "/v1/model": {"get": {"summary": "Model version, tasks, classes, accuracy",
                                  "responses": {"200": {"description": "ok"}}}},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def create_app(model=None, *, token=None, max_upload_bytes=MAX_UPLOAD_BYTES,
               max_pixels=SERVICE_MAX_PIXELS, timeout_s=TIMEOUT_S, max_queue=32,
               max_batch=16, cors_origins=None, threshold=DEFAULT_THRESHOLD, upsample=0):
    """The ASGI application (see the module's documentation for the routes).

    Parameters
    ----------
    model : MultiTaskFaceClassifier, str or None
        A fitted estimator, a model file, or None for the bundled model (loaded at start-up).
    token : str, optional
        Require ``Authorization: Bearer TOKEN`` on ``/v1/`` routes but health.
    max_upload_bytes, max_pixels, timeout_s, max_queue, max_batch
        Limits: upload size, decoded pixels, seconds per request, requests waiting, requests
        classified in one network call.
    cors_origins : list of str, optional
        Origins allowed to call the API from a browser (no CORS headers otherwise).
    threshold, upsample
        Detector defaults (a request's query may override them).
    """
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Route

    from ._engine import Engine, Options, QueueFull
    from .images import ImageError, decode_bytes
    from .pipeline import Analyzer

    state = {}
    defaults = Options(threshold=threshold, upsample=upsample)

    @asynccontextmanager
    async def lifespan(app):
        analyzer = await asyncio.to_thread(Analyzer, model, threshold=threshold,
                                           upsample=upsample, max_pixels=max_pixels)
        if analyzer.bundled:
            await asyncio.to_thread(analyzer._readout_for, "image")  # load it now
        state["analyzer"] = analyzer
        state["engine"] = Engine(analyzer, max_queue=max_queue, max_batch=max_batch).start()
        # One real face through the engine loads dlib's models, traces the network and
        # makes the engine thread's interpreter: the first request does not pay for them.
        from skimage import data

        await asyncio.wrap_future(state["engine"].submit(data.astronaut()))
        yield
        await asyncio.to_thread(state["engine"].stop)  # drains the queued requests

    def error(status, message, headers=None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def authorised(request):
        if token is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    async def analyze(request):
        started = time.perf_counter()
        try:
            if not authorised(request):
                raise _Reject(401, "missing or wrong token (Authorization: Bearer TOKEN)",
                              {"WWW-Authenticate": "Bearer"})
            options = parse_options(dict(request.query_params), defaults)
            data, name = await _image_bytes(request, max_upload_bytes)
            if not data:
                raise _Reject(400, "empty upload: send an image as the body or as field "
                                   "'file'")
            t = time.perf_counter()
            try:
                rgb = await asyncio.to_thread(decode_bytes, data, name, max_pixels)
            except ImageError as exc:
                over = "over the limit" in str(exc)
                raise _Reject(413 if over else 400, str(exc)) from None
            decode_ms = (time.perf_counter() - t) * 1000
            try:
                future = state["engine"].submit(rgb, options)
            except QueueFull as exc:
                raise _Reject(503, f"busy: {exc}; retry shortly", {"Retry-After": "1"}) \
                    from None
            try:
                results, timings = await asyncio.wait_for(asyncio.wrap_future(future),
                                                          timeout_s)
            except asyncio.TimeoutError:
                future.cancel()
                raise _Reject(504, f"the request took over {timeout_s:g} s") from None
        except _Reject as exc:
            return error(exc.status, exc.message, exc.headers)
        faces = [{"face": i, **r.row()} for i, r in enumerate(results)]
        return JSONResponse({
            "image": {"name": name, "width": int(rgb.shape[1]), "height": int(rgb.shape[0])},
            "faces": faces,
            "timings": {"decode_ms": round(decode_ms, 2), **timings,
                        "total_ms": round((time.perf_counter() - started) * 1000, 2)}})

    async def health(request):
        return JSONResponse({"status": "ok", "waiting": state["engine"].waiting,
                             **state["engine"].stats})

    async def model_info(request):
        if not authorised(request):
            return error(401, "missing or wrong token (Authorization: Bearer TOKEN)",
                         {"WWW-Authenticate": "Bearer"})
        analyzer = state["analyzer"]
        return JSONResponse(_model_info(analyzer.classifier, analyzer.bundled))

    async def schema(request):
        return JSONResponse(openapi())

    async def page(request):
        return FileResponse(STATIC / "index.html", media_type="text/html")

    middleware = []
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(Middleware(CORSMiddleware, allow_origins=list(cors_origins),
                                     allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type"]))
    routes = [Route("/v1/analyze", analyze, methods=["POST"]),
              Route("/v1/health", health, methods=["GET"]),
              Route("/v1/model", model_info, methods=["GET"]),
              Route("/openapi.json", schema, methods=["GET"]),
              Route("/", page, methods=["GET"])]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.service = state
    return app


def app_from_environment():
    """The application configured by ``MTLFACES_SERVE`` (JSON of :func:`create_app`'s
    arguments): how ``mtlfaces serve --workers N`` gives each worker process its settings."""
    return create_app(**json.loads(os.environ.get("MTLFACES_SERVE", "{}")))
