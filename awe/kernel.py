"""The "AWE" Jupyter kernel: IPython's kernel with the ``awe>`` prompt's session.

``awe kernel install [--user]`` registers it (a kernel spec named ``awe``, display name
"AWE"); Jupyter then starts ``python -m awe.kernel -f CONNECTION_FILE``. The kernel runs
the same startup as the AWE profile (:func:`awe.startup.start_session`): ``dpu``,
``Processor``, ``Pars`` and the frame classes are in the namespace, AWE's errors show as
one message, and the banner is the first output of the first cell (a notebook shows
nothing a kernel prints while it starts, so the banner waits for the first cell).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

KERNEL_NAME = "awe"
DISPLAY_NAME = "AWE"


def kernel_spec() -> dict[str, Any]:
    """The kernel.json: this Python, this AWE."""
    return {
        "argv": [sys.executable, "-m", "awe.kernel", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }


def install_kernel(user: bool = False, prefix: str | None = None) -> str:
    """Register the AWE kernel: for this user (``user``), under ``prefix``, or by default
    in this Python environment (``sys.prefix``, where AWE is installed: no root needed).
    Returns the folder written."""
    from jupyter_client.kernelspec import KernelSpecManager

    if not user and prefix is None:
        prefix = sys.prefix
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "kernel.json").write_text(json.dumps(kernel_spec(), indent=1))
        return KernelSpecManager().install_kernel_spec(
            folder, KERNEL_NAME, user=user, prefix=None if user else prefix
        )


def start(shell: Any) -> None:
    """The kernel's startup: the AWE session, its banner kept for the first cell."""
    from awe.startup import start_session

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        start_session(shell)

    def show_banner(*_info: Any) -> None:
        shell.events.unregister("pre_run_cell", show_banner)
        print(out.getvalue(), end="")
        print(err.getvalue(), end="", file=sys.stderr)

    shell.events.register("pre_run_cell", show_banner)


def add_parsers(commands: Any) -> None:
    kernel = commands.add_parser("kernel", help="the AWE Jupyter kernel")
    actions = kernel.add_subparsers(dest="action", required=True)
    install = actions.add_parser("install", help='register the "AWE" Jupyter kernel')
    install.add_argument("--user", action="store_true", help="for this user only")
    install.add_argument("--prefix", help="under this prefix (default: this environment)")


def run(args: argparse.Namespace) -> int:
    where = install_kernel(user=args.user, prefix=args.prefix)
    print(f'Installed the "{DISPLAY_NAME}" Jupyter kernel in {where}')
    return 0


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp

    class AweKernelApp(IPKernelApp):
        """IPython's kernel, with the AWE session started before the user's own startup
        code (``exec_lines``, startup files), which a configuration may set freely; the
        configuration files are IPython's kernel's own (``ipython_kernel_config.py``)."""

        def init_code(self) -> None:
            start(self.shell)
            super().init_code()

    AweKernelApp.launch_instance()


if __name__ == "__main__":
    main()
