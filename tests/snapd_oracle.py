"""Debian's ``snap prepare-image`` as an offline oracle for seed tests.

snapd runs against a loopback stub that answers 404 to every store request
(``shared/docs/image-building.md`` §2.4) and uses only the local ``--snap`` files;
``UBUNTU_IMAGE_SKIP_COPY_UNVERIFIED_MODEL=1`` lets a test-signed model through
(snapd then leaves the model file out of the seed).
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

#: marks the tests that need Debian's snap client; they run wherever it is installed
needs_snap = pytest.mark.skipif(
    shutil.which("snap") is None, reason="Debian's snapd (the snap client, the oracle) is missing"
)


class _NotFound(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = json.dumps({"error-list": [{"code": "not-found", "message": "not found"}]})
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def not_found_store() -> Iterator[str]:
    """A store on 127.0.0.1 that knows nothing; yields its URL (with a trailing ``/``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def prepare_image(
    stub: str, model: Path, snaps: list[Path], out: Path, arch: str = "amd64"
) -> None:
    """``snap prepare-image --arch ARCH --snap … MODEL OUT`` against the stub store."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(out.parent),
        "SNAPPY_FORCE_API_URL": stub,
        "SNAPPY_FORCE_SAS_URL": stub,
        "UBUNTU_IMAGE_SKIP_COPY_UNVERIFIED_MODEL": "1",
    }
    args = ["snap", "prepare-image", "--arch", arch]
    for snap in snaps:
        args += ["--snap", str(snap)]
    proc = subprocess.run(
        [*args, str(model), str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
