"""The awe> prompt for real: `awe` and `ipython --profile=awe` as subprocesses, an
interactive session on a pseudo-terminal, and a Jupyter kernel doing `from awe import dpu`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

AWE = shutil.which("awe")
IPYTHON = shutil.which("ipython")
BANNER = [
    "Welcome to the AWE Environment",
    "Initializing Distributed Processing Unit...",
    "Current profile:",
    "- username : ",
    "- database : ",
    "- project  : ",
    "- dpu      : local",
]
SHOW_DPU = (
    "print(type(dpu).__module__, type(dpu).__name__, get_ipython().prompts.in_prompt_tokens())"
)


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def assert_banner(stdout: str) -> None:
    positions = [stdout.find(line) for line in BANNER]
    assert -1 not in positions, f"banner line missing from:\n{stdout}"
    assert positions == sorted(positions), f"banner lines out of order:\n{stdout}"


def test_commands_are_installed() -> None:
    assert AWE and IPYTHON, "pip install -e '.[test]' installs the awe command"


def test_awe_c_shows_banner_prompt_and_processor(awe_home: Path) -> None:
    result = run(AWE, "-c", SHOW_DPU)
    assert result.returncode == 0, result.stderr
    assert_banner(result.stdout)
    assert f"- database : sqlite:///{awe_home / 'awe.db'}" in result.stdout
    assert "awe.dpu.processor Processor [(Token.Prompt, 'awe> ')]" in result.stdout


def test_first_run_installs_profile_for_plain_ipython(tmp_path: Path) -> None:
    first = run(AWE, "-c", "pass")
    assert "Installed " in first.stderr
    assert (tmp_path / "ipython" / "profile_awe" / "startup" / "00-awe.py").exists()
    result = run(IPYTHON, "--profile=awe", "-c", SHOW_DPU)
    assert result.returncode == 0, result.stderr
    assert_banner(result.stdout)
    assert "awe.dpu.processor Processor [(Token.Prompt, 'awe> ')]" in result.stdout


def test_profile_install_command_keeps_user_edits(tmp_path: Path) -> None:
    assert run(AWE, "profile", "install").returncode == 0
    config = tmp_path / "ipython" / "profile_awe" / "ipython_config.py"
    config.write_text(config.read_text() + "\n# my edit\n")
    again = run(AWE, "profile", "install")
    assert "already installed" in again.stdout
    assert "# my edit" in config.read_text()
    run(AWE, "profile", "install", "--force")
    assert "# my edit" not in config.read_text()


def test_banner_masks_the_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_DATABASE_URL", "mysql+pymysql://alice:s3cret@127.0.0.1:3306/awe")
    result = run(AWE, "-c", "print(repr(dpu))")
    assert "- database : mysql+pymysql://alice:***@127.0.0.1:3306/awe" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr


def test_malformed_config_warns_then_starts_on_defaults(awe_home: Path) -> None:
    awe_home.mkdir(parents=True)
    config = awe_home / "awe_config.py"
    config.write_text("c.Env.project = 'MINE'\nc.Env.project = (\n")
    result = run(AWE, "-c", "print(dpu.env.project)")
    assert result.returncode == 0
    assert f"WARNING: {config}, line 2: SyntaxError" in result.stderr
    assert_banner(result.stdout)
    assert result.stdout.strip().endswith("default")


def test_unknown_dpu_stops_awe_with_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWE_DPU_NAME", "nowhere")
    result = run(AWE, "-c", "pass")
    assert result.returncode == 2
    assert "'nowhere' is not a configured DPU; configured DPUs: local" in result.stderr
    assert "AWE_DPU_NAME" in result.stderr


def test_plain_ipython_profile_reports_bad_settings_without_dpu(monkeypatch) -> None:
    assert run(AWE, "profile", "install").returncode == 0
    monkeypatch.setenv("AWE_DPU_NAME", "nowhere")
    result = run(IPYTHON, "--profile=awe", "-c", "print('dpu' in dir(), 'Processor' in dir())")
    assert "ERROR: dpu_name = 'nowhere'" in result.stderr
    assert "dpu = Processor()" in result.stderr
    assert "False True" in result.stdout


def test_unwritable_home_stops_awe_naming_path(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("AWE_HOME", str(blocker / "home"))
    result = run(AWE, "-c", "pass")
    assert result.returncode == 2
    assert f"AWE home {blocker / 'home'} cannot be written" in result.stderr


def read_until(fd: int, marker: bytes, timeout: float = 30) -> bytes:
    """Read the pseudo-terminal until ``marker`` appears (or fail after ``timeout``)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"never saw {marker!r}; got:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            seen += chunk
    return seen


@contextlib.contextmanager
def awe_on_a_terminal() -> Iterator[tuple[subprocess.Popen, int]]:
    """``awe`` on a pseudo-terminal, as a person starts it: the process and the terminal's
    file descriptor (write what is typed, read what is shown); killed at the end."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))  # rows, columns
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "200", "LINES": "40"}
    process = subprocess.Popen(
        [AWE, "--no-confirm-exit", "--colors=NoColor", "--simple-prompt"],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        close_fds=True,
    )
    os.close(child)
    try:
        yield process, main
    finally:
        process.kill()
        os.close(main)


def test_interactive_prompt_on_a_terminal() -> None:
    with awe_on_a_terminal() as (process, main):
        startup = read_until(main, b"awe> ")
        assert b"Welcome to the AWE Environment" in startup
        os.write(main, b"dpu.get_dpu_identifiers()\n")
        answer = read_until(main, b"awe> ")
        assert b"['local']" in answer
        os.write(main, b"exit\n")
        assert process.wait(timeout=30) == 0


def test_jupyter_kernel_gets_the_same_processor_lazily() -> None:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", env=dict(os.environ))
    try:
        outputs: list[str] = []
        code = (
            "import sys; print('awe.dpu.processor' in sys.modules)\n"
            "from awe import dpu\nimport awe\nfrom awe.dpu import Processor\n"
            "print(type(dpu).__name__, dpu is awe.dpu, isinstance(dpu, Processor))"
        )
        reply = client.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda msg: outputs.append(msg["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok"
        text = "".join(outputs)
        assert text.splitlines()[0] == "False"  # nothing created before it was asked for
        assert "Processor True True" in text
        errors: list[dict] = []
        reply = client.execute_interactive(
            "dpu.run('Nope')",
            timeout=60,
            output_hook=lambda msg: msg["msg_type"] == "error" and errors.append(msg["content"]),
        )
        assert reply["content"]["status"] == "error"  # AWE's error display came with dpu
        assert errors[0]["traceback"] == [
            f"UnknownSequence: {errors[0]['evalue']} (%tb shows the traceback)"
        ]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
