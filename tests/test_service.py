"""mtlfaces serve's API, in process: every route, every error status, the token, the limits,
micro-batching. (The page in a real browser: tests/test_browser.py.)"""

import json
import threading

import cv2
import numpy as np
import pytest
from starlette.testclient import TestClient

import mtlfaces
from mtlfaces._engine import Engine
from mtlfaces.service import create_app

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, fitted):
    path = tmp_path_factory.mktemp("svc") / "tiny.mtlfaces"
    fitted.save(path)
    return str(path)


@pytest.fixture(scope="module")
def jpeg(astronaut):
    return cv2.imencode(".jpg", cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.fixture(scope="module")
def client(tiny):
    with TestClient(create_app(tiny, token=TOKEN, max_upload_bytes=2**20,
                               max_pixels=1_000_000)) as c:
        yield c


def test_analyze_answers_what_analyze_does(client, tiny, jpeg):
    raw = client.post("/v1/analyze", content=jpeg, headers={**AUTH,
                                                             "content-type": "image/jpeg"})
    form = client.post("/v1/analyze", files={"file": ("a.jpg", jpeg, "image/jpeg")},
                       headers=AUTH)
    assert raw.status_code == form.status_code == 200
    body = raw.json()
    assert body["image"] == {"name": "upload", "width": 512, "height": 512}
    assert form.json()["image"]["name"] == "a.jpg"
    assert set(body["timings"]) >= {"decode_ms", "detect_ms", "classify_ms", "total_ms"}
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB)
    expected = mtlfaces.analyze(decoded, tiny)
    strip = ("source", "frame", "time")
    assert body["faces"] == [{k: v for k, v in r.items() if k not in strip} for r in expected]
    assert form.json()["faces"] == body["faces"]
    crops = client.post("/v1/analyze?crops=true&readout=false&threshold=0.5&upsample=1",
                        content=jpeg, headers=AUTH).json()
    assert len(crops["faces"]) == 1


@pytest.mark.parametrize("query, message", [
    ("?upsample=7", "upsample='7'"), ("?threshold=big", "threshold='big'"),
    ("?crops=maybe", "crops='maybe'"), ("?colour=1", "unknown option(s) ['colour']"),
])
def test_bad_options_are_422(client, jpeg, query, message):
    r = client.post("/v1/analyze" + query, content=jpeg, headers=AUTH)
    assert r.status_code == 422 and message in r.json()["error"]


def test_bad_uploads_are_4xx_with_a_json_error(client, jpeg):
    cases = [(b"not an image", 400, "not a readable image"),
             (jpeg[: len(jpeg) // 3], 400, "not a readable image"),
             (b"", 400, "empty upload"),
             (b"x" * (2**20 + 1), 413, "over the limit"),
             (cv2.imencode(".png", np.zeros((1100, 1000), np.uint8))[1].tobytes(), 413,
              "1,100,000 pixels, over the limit of 1,000,000")]
    for body, status, message in cases:
        r = client.post("/v1/analyze", content=body, headers=AUTH)
        assert r.status_code == status, (message, r.text)
        assert message in r.json()["error"]
    r = client.post("/v1/analyze", files={"other": ("a.jpg", jpeg, "image/jpeg")}, headers=AUTH)
    assert r.status_code == 400 and "'file'" in r.json()["error"]


def test_the_token(client, jpeg):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = client.post("/v1/analyze", content=jpeg, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/model", headers=headers).status_code == 401
    assert client.get("/v1/health").status_code == 200  # for load balancers


def test_model_health_openapi_and_the_page(client):
    info = client.get("/v1/model", headers=AUTH).json()
    assert info["tasks"] == ["age", "gender", "emotion"] and info["model"] == "custom"
    assert info["inference"] == "keras" and info["input"] == [32, 32, 1]
    assert client.get("/v1/health").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/v1/analyze", "/v1/health", "/v1/model"}
    assert {"400", "401", "413", "422", "503", "504"} <= set(
        spec["paths"]["/v1/analyze"]["post"]["responses"])
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # Works offline: nothing is fetched from another origin.
    assert "://" not in page.text.replace("http://www.w3.org", "")
    assert "access-control-allow-origin" not in page.headers


class _Gate:
    """Holds the engine thread until released (to fill its queue on purpose)."""

    def __init__(self, monkeypatch):
        self.open = threading.Event()
        self.entered = threading.Event()  # the engine thread is held, its batch taken
        real = Engine._process

        def held(engine, jobs):
            self.entered.set()
            self.open.wait(10)
            return real(engine, jobs)

        monkeypatch.setattr(Engine, "_process", held)


def test_a_full_queue_is_503_and_a_slow_request_504(tiny, jpeg, monkeypatch):
    # The time limit leaves an unheld request room on a slow, shared machine (the last
    # request below must be answered within it); the held one is held until it is over.
    app = create_app(tiny, max_queue=1, timeout_s=1.5)
    with TestClient(app) as c:
        gate = _Gate(monkeypatch)
        engine = app.state.service["engine"]
        rgb = np.zeros((64, 64, 3), np.uint8)
        first = engine.submit(rgb)  # taken by the held engine thread
        assert gate.entered.wait(10)
        second = engine.submit(rgb)  # waits in the queue, which is now full
        r = c.post("/v1/analyze", content=jpeg)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        gate.open.set()
        first.result(10), second.result(10)
        gate.open.clear()
        r = c.post("/v1/analyze", content=jpeg)  # held past its 1.5 s
        assert r.status_code == 504 and "over 1.5 s" in r.json()["error"]
        gate.open.set()
        # The engine survives requests that gave up: the next one is answered.
        assert c.post("/v1/analyze", content=jpeg).status_code == 200


def test_concurrent_requests_share_one_network_call(tiny, astronaut, monkeypatch):
    app = create_app(tiny, max_batch=8)
    with TestClient(app):
        engine = app.state.service["engine"]
        engine.window_s = 0  # take what is queued, wait for nothing more
        gate = _Gate(monkeypatch)
        calls = engine.stats["network_calls"]
        blocker = engine.submit(astronaut)
        assert gate.entered.wait(10)  # the blocker's batch is taken: the five queue behind it
        futures = [engine.submit(np.ascontiguousarray(astronaut[:, ::-1])) for _ in range(5)]
        gate.open.set()
        blocker.result(10)
        results = [f.result(10) for f in futures]
        assert all(len(faces) == 1 for faces, _ in results)
        # The five waited while the engine was busy, then went through one network call.
        assert [timings["batch_requests"] for _, timings in results] == [5] * 5
        assert engine.stats["network_calls"] == calls + 2  # the blocker's, then the five's


def test_cors_only_when_asked(tiny):
    with TestClient(create_app(tiny, cors_origins=["http://example.org"])) as c:
        r = c.options("/v1/analyze", headers={"Origin": "http://example.org",
                                              "Access-Control-Request-Method": "POST"})
        assert r.headers["access-control-allow-origin"] == "http://example.org"


def test_the_bundled_model_over_http(jpeg):
    with TestClient(create_app()) as c:
        body = c.post("/v1/analyze", content=jpeg).json()
        face = body["faces"][0]
        assert (face["gender"], face["emotion"]) == ("Female", "Happy")
        assert abs(sum(face["distributions"]["emotion"].values()) - 1) < 0.02
        info = c.get("/v1/model").json()
        assert info["model"] == "bundled" and info["inference"] == "int8"
        assert info["validation_accuracy"]["int8"]["gender (UTKFace)"] > 0.9
        json.dumps(body)


def test_a_request_cancelled_in_the_queue_is_skipped(tiny, monkeypatch):
    app = create_app(tiny)
    with TestClient(app):
        engine = app.state.service["engine"]
        gate = _Gate(monkeypatch)
        rgb = np.zeros((64, 64, 3), np.uint8)
        held = engine.submit(rgb)
        assert gate.entered.wait(10)
        gone, kept = engine.submit(rgb), engine.submit(rgb)
        assert gone.cancel()  # as a request that timed out while queued
        gate.open.set()
        assert held.result(10)[0] == [] and kept.result(10)[0] == []
        assert engine.submit(rgb).result(10)[0] == []  # the engine lives on
