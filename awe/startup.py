"""What happens when an AWE session starts: the banner and the session's Processor.

Shared by the ``awe>`` prompt (the IPython profile's startup file), the AWE Jupyter kernel
(which runs the same startup) and by ``from awe import dpu`` in notebooks and scripts, so
all get the same, single Processor. Inside IPython, the session also shows AWE's errors as
one message and does not echo what the Processor printed (:mod:`awe.shell`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from awe.dpu.processor import Processor
    from awe.env import Env

WELCOME = "Welcome to the AWE Environment"
BANNER_WIDTH = 72

_processor: Processor | None = None


def session_processor() -> Processor:
    """The session's Processor, created on first call (configuration warnings shown once)."""
    global _processor
    if _processor is None:
        from awe.dpu.processor import Processor
        from awe.env import load_env

        env = load_env()
        for warning in env.warnings:
            print(f"WARNING: {warning}", file=sys.stderr)
        _processor = Processor(env)
        _install_into_running_shell()
    return _processor


def _install_into_running_shell() -> None:
    """``from awe import dpu`` in any IPython or kernel: AWE's error display there too."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        from awe.shell import install

        install(shell)


def profile_lines(env: Env) -> list[str]:
    """The ``Current profile:`` block of the banner (database password masked)."""
    from awe.database_url import mask_url

    return [
        "Current profile:",
        f"- username : {env.username}",
        f"- database : {mask_url(env.database_url)}",
        f"- project  : {env.project}",
        f"- dpu      : {env.dpu_name}",
    ]


def start_session(shell: Any) -> None:
    """Print the banner and bind ``dpu``, ``Processor``, ``Pars`` and (when a cell first
    names something new, see :func:`awe.shell.frame_classes_on_first_use`) the frame
    classes (``RawBiasFrame``, ``BiasFrame``, ...) in the user's namespace."""
    from awe.dpu.pars import Pars
    from awe.dpu.processor import Processor
    from awe.errors import AweError
    from awe.shell import frame_classes_on_first_use, install

    install(shell)
    frame_classes_on_first_use(shell)
    print(WELCOME.center(BANNER_WIDTH).rstrip())
    print("Initializing Distributed Processing Unit...")
    try:
        dpu = session_processor()
    except AweError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        print(
            "dpu was not created. Fix the setting above, then run: dpu = Processor()",
            file=sys.stderr,
        )
        shell.push({"Processor": Processor, "Pars": Pars})
        return
    print("\n".join(profile_lines(dpu.env)))
    shell.push({"dpu": dpu, "Processor": Processor, "Pars": Pars})
