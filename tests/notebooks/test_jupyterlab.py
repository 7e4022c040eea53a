"""`make lab` works: JupyterLab serves the notebooks and starts the project kernel, which imports sisrlib.

The server is started on 127.0.0.1 with a random token, driven through its REST API and the kernel's websocket
channel, then shut down.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNEL_NAME = "sisr"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    def __init__(self, port: int, token: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"
        self.token = token

    def request(self, method: str, path: str, body: object | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            payload = resp.read()
        return json.loads(payload) if payload else None


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    jupyter = Path(sys.executable).parent / "jupyter"
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_TOKEN=token)
    proc = subprocess.Popen(
        [
            str(jupyter),
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={ROOT / 'notebooks'}",
            "--ServerApp.open_browser=False",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Lab(port, token)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.request("GET", "/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"JupyterLab did not start on port {port}: {err[-2000:]}")
                time.sleep(0.5)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_lab_serves_the_notebooks(lab: Lab) -> None:
    listing = lab.request("GET", "/api/contents/")
    assert isinstance(listing, dict)
    names = {item["name"] for item in listing["content"]}
    expected = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert expected, "no notebook in notebooks/"
    assert expected <= names
    first = sorted(expected)[0]
    nb = lab.request("GET", f"/api/contents/{first}")
    assert isinstance(nb, dict) and nb["type"] == "notebook"


async def _execute(lab: Lab, kernel_id: str, code: str) -> tuple[str, str]:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(
        f"{lab.ws_base}/api/kernels/{kernel_id}/channels", headers={"Authorization": f"token {lab.token}"}
    )
    conn = await websocket_connect(request)
    msg_id = uuid.uuid4().hex
    message = {
        "header": {
            "msg_id": msg_id,
            "username": "test",
            "session": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    }
    await conn.write_message(json.dumps(message))
    # The reply (shell channel) and the printed text (iopub) travel on different channels and may arrive in
    # either order: the request is complete when both the reply and the kernel's iopub "idle" have arrived.
    stdout, status, idle = "", "", False
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (status and idle):
        raw = await asyncio.wait_for(conn.read_message(), timeout=90)
        if raw is None:
            break
        reply = json.loads(raw)
        if reply.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if reply["msg_type"] == "stream":
            stdout += reply["content"]["text"]
        elif reply["msg_type"] == "execute_reply":
            status = reply["content"]["status"]
        elif reply["msg_type"] == "status" and reply["content"].get("execution_state") == "idle":
            idle = True
    conn.close()
    return status, stdout


def test_project_kernel_starts_and_imports_sisrlib(lab: Lab) -> None:
    specs = lab.request("GET", "/api/kernelspecs")
    assert isinstance(specs, dict)
    assert KERNEL_NAME in specs["kernelspecs"], (
        f"kernel {KERNEL_NAME!r} is not registered (found {sorted(specs['kernelspecs'])}); run `make env`"
    )
    kernel = lab.request("POST", "/api/kernels", {"name": KERNEL_NAME})
    assert isinstance(kernel, dict)
    try:
        status, out = asyncio.run(
            _execute(lab, kernel["id"], "import sisrlib, sys; print(sisrlib.__version__)")
        )
        assert status == "ok"
        assert out.strip() == __import__("sisrlib").__version__
    finally:
        lab.request("DELETE", f"/api/kernels/{kernel['id']}")
