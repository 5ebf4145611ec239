"""Drive Debian's headless Chromium through the Chrome DevTools protocol over a pipe (stdlib only).

``--remote-debugging-pipe`` makes Chromium read protocol commands from file descriptor 3 and write
replies and events to file descriptor 4, each message a JSON object terminated by a NUL byte: no
websocket library and no network port are needed. :func:`open_page` loads a URL, waits for the load
event and a short quiet period, then returns what a test checks: console errors, uncaught exceptions,
failed or external requests, every ``<img>``'s natural size and a full-page PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
LAUNCH_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for c in (os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return None


@dataclass
class PageResult:
    """What the browser saw."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    request_urls: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    screenshot: bytes = b""

    @property
    def errors(self) -> list[str]:
        """Every error the page produced (console, uncaught, browser log, failed loads)."""
        return [*self.console_errors, *self.exceptions, *self.log_errors, *self.failed_requests]


class _Pipe:
    def __init__(self, proc: subprocess.Popen, wfd: int, rfd: int):
        self.proc, self.wfd, self.rfd = proc, wfd, rfd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for m in self._read(deadline):
                if m.get("id") == mid:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
                self.events.append(m)

    def _read(self, deadline: float) -> list[dict[str, Any]]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            r, _, _ = select.select([self.rfd], [], [], min(left, 0.5))
            if r:
                chunk = os.read(self.rfd, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe (exit code {self.proc.poll()})")
                self.buf += chunk
        out = []
        while b"\0" in self.buf:
            raw, self.buf = self.buf.split(b"\0", 1)
            if raw:
                out.append(json.loads(raw))
        return out

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.extend(self._read(deadline))
            except TimeoutError:
                return


def open_page(
    url: str,
    *,
    chromium: str | None = None,
    width: int = 1280,
    height: int = 900,
    settle: float = 1.0,
    timeout: float = 90.0,
) -> PageResult:
    """Load ``url`` in headless Chromium and report errors, images and a full-page screenshot."""
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not installed")
    profile = tempfile.mkdtemp(prefix="bd-chromium-")
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()

    def _fds() -> None:  # runs in the child: the protocol lives on fds 3 (in) and 4 (out)
        a, b = os.dup(to_child_r), os.dup(from_child_w)  # first out of the way of 3 and 4
        os.dup2(a, 3)
        os.dup2(b, 4)

    proc = subprocess.Popen(
        [
            exe,
            *LAUNCH_FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_fds,
        pass_fds=(3, 4),
    )
    os.close(to_child_r)
    os.close(from_child_w)
    pipe = _Pipe(proc, to_child_w, from_child_r)
    res = PageResult()
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        sess = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for dom in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{dom}.enable", session=sess)
        pipe.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=sess,
        )
        pipe.events.clear()
        pipe.send("Page.navigate", {"url": url}, session=sess, timeout=timeout)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in pipe.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading in {timeout} s")
            pipe.pump(0.2)
        pipe.pump(settle)
        info = pipe.send(
            "Runtime.evaluate",
            {
                "expression": "JSON.stringify({title: document.title, images: Array.from(document.images).map("
                "i => ({src: i.src.slice(0, 64), complete: i.complete, naturalWidth: i.naturalWidth, "
                "naturalHeight: i.naturalHeight, alt: i.alt}))})",
                "returnByValue": True,
            },
            session=sess,
        )
        page = json.loads(info["result"]["value"])
        res.title, res.images = page["title"], page["images"]
        metrics = pipe.send("Page.getLayoutMetrics", session=sess)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = pipe.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": width,
                    "height": min(float(size["height"]), 16000.0),
                    "scale": 1,
                },
            },
            session=sess,
            timeout=timeout,
        )
        res.screenshot = base64.b64decode(shot["data"])
        for e in pipe.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                res.console_errors.append(
                    " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                )
            elif m == "Runtime.exceptionThrown":
                res.exceptions.append(p.get("exceptionDetails", {}).get("text", "exception"))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                res.log_errors.append(p["entry"].get("text", ""))
            elif m == "Network.loadingFailed":
                res.failed_requests.append(f"{p.get('errorText')} ({p.get('type')})")
            elif m == "Network.requestWillBeSent":
                res.request_urls.append(p.get("request", {}).get("url", ""))
        try:
            pipe.send("Browser.close", timeout=10)
        except Exception:  # the browser may close the pipe before answering
            pass
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        os.close(to_child_w)
        os.close(from_child_r)
        shutil.rmtree(profile, ignore_errors=True)
    return res
