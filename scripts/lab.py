"""Start JupyterLab on notebooks/ with this environment: what `make lab` runs.

    .venv/bin/python scripts/lab.py            # port 8888, or the next free one; prints the URL

The command is built in one place, `lab_command`, which `scripts/browser_check.py` (`make
test-browser`) also uses, so the browser test starts JupyterLab exactly as a learner does. As root
(containers, cloud machines) JupyterLab refuses to start without `--allow-root`; it is added only
then. The token is chosen here, so the URL printed before the server starts is the one to open.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
DEFAULT_PORT = 8888


def is_root() -> bool:
    """True when running as the superuser (JupyterLab then needs --allow-root)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """`preferred` when nothing listens there, else a port the system hands out as free."""
    if preferred is not None and port_is_free(preferred, host):
        return preferred
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def lab_command(
    port: int,
    token: str,
    *,
    ip: str = "localhost",
    notebook_dir: Path = NOTEBOOKS,
    open_browser: bool = True,
    python: str = sys.executable,
    root: bool | None = None,
) -> list[str]:
    """The JupyterLab command line: notebooks/ as its folder, a fixed port and token.

    Args:
        port: TCP port to listen on; the server fails instead of silently moving to another one,
            so the printed URL is always right.
        token: the access token that the URL carries.
        ip: interface to listen on (the default, localhost, is reachable from this machine only).
        notebook_dir: the folder JupyterLab shows (the repository's notebooks/).
        open_browser: let JupyterLab open a browser window (False for the browser test).
        python: the interpreter whose JupyterLab and kernel run (this environment's).
        root: add --allow-root; default: when running as root.
    """
    command = [
        python,
        "-m",
        "jupyter",
        "lab",
        f"--notebook-dir={notebook_dir}",
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
    ]
    if not open_browser:
        command.append("--no-browser")
    if is_root() if root is None else root:
        command.append("--allow-root")
    return command


def lab_url(port: int, token: str, host: str = "localhost", path: str = "lab") -> str:
    """The address to open in a browser (`path` e.g. "lab/tree/01_midi_parsing.ipynb")."""
    return f"http://{host}:{port}/{path}?token={token}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="preferred port")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    args = parser.parse_args(argv)
    port = free_port(args.port)
    token = secrets.token_hex(24)
    command = lab_command(port, token, open_browser=not args.no_browser)
    print(f"\n    JupyterLab on {NOTEBOOKS}\n    open  {lab_url(port, token)}\n", flush=True)
    os.execv(command[0], command)  # JupyterLab takes over this process (Ctrl-C stops it)


if __name__ == "__main__":
    sys.exit(main())
