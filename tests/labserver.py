"""A private JupyterLab server for the tests: temporary config, loopback port, random token.

Used by the browser test (a copy of a notebook in a temporary root) and by the check that
``make lab`` serves the notebooks. ``Lab.stop()`` ends the server and any kernels it started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

SERVER_START_TIMEOUT = 60  # s, until /api/status answers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def request(url: str, token: str, method: str = "GET", timeout: float = 5.0):
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (the kernels the server started), read from /proc."""
    kids = []
    if not Path("/proc").is_dir():  # not Linux: rely on the server's own shutdown
        return kids
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, so split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lab:
    """A JupyterLab server in its own temporary world; ``stop()`` ends it and its kernels."""

    def __init__(self, base: Path, notebook: Path | None = None,
                 command: Callable[[Lab], list[str]] | None = None):
        """``notebook`` is copied into a fresh root folder; ``command(lab)`` replaces the
        default server command (it must serve on ``lab.port`` with ``lab.token``)."""
        self.base = base
        self.root = base / "root"
        self.root.mkdir()
        if notebook is not None:
            shutil.copy2(notebook, self.root / notebook.name)
        self.notebook = notebook.name if notebook is not None else None
        self.command = command or Lab.jupyterlab_command
        self.token = secrets.token_hex(24)
        self.log_path = base / "jupyter.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

        config = base / "config"
        settings = base / "settings"
        # The news/update toast would cover the notebook; the id is JupyterLab 4's plugin id.
        _write_json(
            config / "labconfig" / "page_config.json",
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}},
        )
        _write_json(
            settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
            {"fetchNews": "false", "checkForUpdates": False},
        )
        # Render every cell (no virtual scrolling), so the widget's DOM exists wherever it is.
        _write_json(
            settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
            {"windowingMode": "none"},
        )
        self.env = dict(os.environ)
        self.env.update(
            JUPYTER_CONFIG_DIR=str(config),
            JUPYTER_RUNTIME_DIR=str(base / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
            IPYTHONDIR=str(base / "ipython"),
            LABKIT_QUICK="1",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        # JUPYTER_DATA_DIR stays as it is: the venv's share/jupyter holds the widget extension.

    def jupyterlab_command(self) -> list[str]:
        """``python -m jupyterlab`` on loopback, serving ``self.root``."""
        return [
            sys.executable, "-m", "jupyterlab", *self.server_options(),
            f"--ServerApp.root_dir={self.root}",
        ]  # fmt: skip

    def server_options(self) -> list[str]:
        """Loopback only, this port and token, no browser, no news or update checks."""
        return [
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.open_browser=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            # No trust carried over from other sessions: notebooks open untrusted, as in a
            # fresh clone, until this server runs or saves them.
            "--NotebookNotary.db_file=:memory:",
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port = _free_port()
            cmd = self.command(self)
            log = open(self.log_path, "ab")  # closed in stop()
            self.proc = subprocess.Popen(
                cmd, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            self._log = log
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    status, _ = request(f"{self.url}/api/status", self.token, timeout=2)
                    if status == 200:
                        return
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    pass
                time.sleep(0.25)
            code = self.proc.poll()
            self.stop()
            if code is not None and b"already in use" in self.log_path.read_bytes():
                continue
            raise RuntimeError(
                f"JupyterLab did not answer on {self.url} within {SERVER_START_TIMEOUT} s"
                f" (exit code {code}). Log tail:\n{self.log_tail()}"
            )
        raise RuntimeError(f"No free port for JupyterLab after 3 tries. Log:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        kernels = _children(proc.pid) if proc.poll() is None else []
        if proc.poll() is None:
            try:  # graceful: shuts kernels down and exits
                request(f"{self.url}/api/shutdown", self.token, method="POST", timeout=5)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        # Kernels left behind (they run in their own sessions): end them by pid.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = [pid for pid in kernels if _alive(pid)]
            for pid in alive:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if alive:
                time.sleep(2)
        self._log.close()
        self.proc = None
