"""SSH DPU round trip: a one-task no-op job over SSH to 127.0.0.1, from submit to FINISHED
seen by get_status, on a warm connection; baseline in the same run: one bare
``python -c pass`` over the same paramiko connection. Also the code bytes uploaded by the
first and the second submission (the second should upload none).

Needs OpenSSH's sshd (bash tests/services/start.sh installs it); starts its own on a free
port. Run: python benchmarks/ssh_dpu.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sshd import SSHServer  # noqa: E402 - the tests' real sshd, reused

NOOP = '''
from awe.sequence import sequence

@sequence(fan_out="global", estimate=0.1)
def NoOp(task):
    """Does nothing."""
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        server = SSHServer(root / "sshd")
        try:
            home = root / "home"
            (home / "sequences").mkdir(parents=True)
            (home / "sequences" / "noop.py").write_text(NOOP)
            os.environ["AWE_HOME"] = str(home)
            from awe.dpu import Processor

            dpu = Processor(
                session_log="",
                username="bench",
                dpus={"far": server.dpu(root / "remote")},
                dpu_name="far",
            )
            shell = dpu.backend().shell
            first = dpu.run("NoOp")
            code_first = shell.bytes_uploaded
            dpu.wait(first)
            before = shell.bytes_uploaded
            second = dpu.run("NoOp")
            code_second = shell.bytes_uploaded - before
            dpu.wait(second)

            round_trips, bare = [], []
            for _ in range(args.rounds):
                started = time.perf_counter()
                shell.run([sys.executable, "-c", "pass"]).check("python -c pass")
                bare.append(time.perf_counter() - started)
                started = time.perf_counter()
                job_id = dpu.run("NoOp")
                while not dpu._statuses(job_id)[0].is_final:
                    time.sleep(0.02)
                round_trips.append(time.perf_counter() - started)
        finally:
            server.stop()
    job, baseline = statistics.median(round_trips), statistics.median(bare)
    print(f"one-task job round trip over SSH : {job:.3f} s (median of {args.rounds})")
    print(f"baseline ssh python -c pass      : {baseline:.3f} s")
    print(f"ratio job/baseline               : {job / baseline:.1f}")
    print(f"bytes uploaded, first submission : {code_first} (code snapshot + job.json)")
    print(f"bytes uploaded, second submission: {code_second} (job.json travels with the start)")


if __name__ == "__main__":
    main()
