"""A real nginx (Debian's ``nginx``) in front of a test gateway, configured with the
README's recipe, so the test holds the README true.

The recipe's ``upstream`` address and ``listen`` port are replaced with the test's;
everything else is the README's text inside a minimal ``http`` block with nginx's
defaults (buffering on, ``proxy_read_timeout`` 60 s), temp paths in a private dir.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .conftest import ROOT

BINARY = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
MISSING = "nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)"


def readme_recipe() -> str:
    """The README's nginx configuration block (the first ```nginx fence)."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```nginx\n") + len("```nginx\n")
    return readme[start : readme.index("```", start)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def nginx_in_front(gateway_url: str, extra: str = "") -> Iterator[str]:
    """Run nginx with the README's recipe pointed at ``gateway_url``; yield nginx's URL.
    ``extra`` goes into the ``location /`` block (to show what breaks without the recipe)."""
    assert BINARY is not None, MISSING
    upstream = gateway_url.removeprefix("http://")
    port = _free_port()
    recipe = readme_recipe().replace("127.0.0.1:8080", upstream).replace("listen 80;", f"listen 127.0.0.1:{port};")
    assert upstream in recipe and f"127.0.0.1:{port}" in recipe, "the README's recipe changed shape"
    if extra:
        recipe = re.sub(r"(location / \{\n)", lambda m: m.group(1) + extra + "\n", recipe, count=1)
    with tempfile.TemporaryDirectory(prefix="gateway-nginx-") as prefix:
        conf = Path(prefix) / "nginx.conf"
        conf.write_text(
            f"""
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{recipe}
}}
"""
        )
        process = subprocess.Popen([BINARY, "-p", prefix, "-c", str(conf)], stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError("nginx did not start listening within 10 s")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)
