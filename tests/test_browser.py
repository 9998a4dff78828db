"""The page of ``mtlfaces serve`` in a real browser: headless Chromium driven by selenium
against a server started here on 127.0.0.1, then stopped with SIGTERM.

Needs ``chromium`` and ``chromium-driver`` (Debian packages; ``.ci/run`` installs them when
they are missing) and selenium (the dev extra); skipped without them.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import cv2
import pytest

pytest.importorskip("selenium")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="chromium and chromium-driver are not installed")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mtlfaces.cli", "serve", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/v1/health", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / "server.log").read_text())
            time.sleep(0.25)
    else:
        proc.kill()
        raise RuntimeError(f"the server did not answer /v1/health within a minute: "
                           f"{(tmp_path / 'server.log').read_text()}")
    yield url, proc
    if proc.poll() is None:
        proc.kill()
    log.close()


def test_the_page_shows_a_real_face_and_the_server_stops_cleanly(server, astronaut, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, proc = server
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        browser.get(url + "/")
        # On a loaded machine Chromium may hand back control before the page has parsed.
        WebDriverWait(browser, 30).until(lambda b: "mtlfaces" in b.title)
        # The controls are labelled for keyboard and screen-reader users.
        assert browser.find_element(By.CSS_SELECTOR, "label[for=file]").text
        browser.find_element(By.ID, "file").send_keys(str(photo))
        WebDriverWait(browser, 60).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, ".face-result")
            or "Error" in b.find_element(By.ID, "status").text)
        faces = browser.find_elements(By.CSS_SELECTOR, ".face-result")
        assert len(faces) == 1, browser.find_element(By.ID, "status").text
        title = faces[0].find_element(By.TAG_NAME, "h2").text
        # Age group, the age in years (the bundled network's fourth head), gender, emotion.
        assert re.fullmatch(r"Face 0: [A-Za-z ]+, \d+ years, Female, Happy", title), title
        assert len(faces[0].find_elements(By.CSS_SELECTOR, "[role=meter]")) == 5 + 2 + 7
        # One box drawn on the canvas, in the first face's colour, where the API put it.
        pixel = browser.execute_script(
            "const c = document.getElementById('canvas');"
            "return [c.width, Array.from(c.getContext('2d').getImageData(222, 170, 1, 1).data)];")
        assert pixel[0] == 512
        assert pixel[1][:3] == [0x2a, 0x6d, 0xf4]  # the bottom edge of the box (179..266, 170)
        browser.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 10_000
    finally:
        browser.quit()
    # SIGTERM during a request: the request is answered, then the server exits (uvicorn
    # re-raises the signal after its graceful shutdown, hence -SIGTERM as the status).
    answers = []
    request = urllib.request.Request(url + "/v1/analyze", data=photo.read_bytes(),
                                     headers={"content-type": "image/jpeg"})
    worker = threading.Thread(target=lambda: answers.append(urllib.request.urlopen(request)))
    worker.start()
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    worker.join(30)
    assert answers and answers[0].status == 200
    assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
