"""The data subcommands as users run them: ``awe simulate`` (a tile-compressed DECam
exposure), ``awe ingest`` (twice, then with a bad file) and ``awe demo``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _awe(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "awe.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_simulate_and_ingest_a_decam_exposure(tmp_path: Path) -> None:
    out = tmp_path / "decam"
    made = _awe("simulate", "-i", "DECam", "-e", "668439", "--scale", "0.0625", "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert (out / "DECam_00668439.fits.fz").exists() and (out / "truth" / "night.json").exists()

    first = _awe("ingest", "--no-progress", str(out))
    assert first.returncode == 0, first.stderr
    assert "Ingested 1 of 1 files: 60 new frames (RawScienceFrame 60)" in first.stderr
    again = _awe("ingest", str(out / "DECam_00668439.fits.fz"))
    assert again.returncode == 0 and "0 new frames, 60 already present" in again.stderr

    (tmp_path / "junk.fits").write_text("not an image")
    bad = _awe("ingest", str(tmp_path / "junk.fits"), str(out))
    assert bad.returncode == 1
    assert f"ERROR: {tmp_path / 'junk.fits'}: is not a FITS file" in bad.stderr


def test_demo_simulates_ingests_and_lists(awe_home: Path) -> None:
    result = _awe("demo", "--scale", "0.0625", timeout=900)  # it calibrates the night too
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines if line.startswith("  Raw")]
    table = {row[0]: row[1:3] for row in rows if row[1].isdigit()}
    assert table == {
        "RawBiasFrame": ["80", "8"],
        "RawDomeFlatFrame": ["120", "8"],
        "RawScienceFrame": ["120", "8"],
        "RawStandardFrame": ["72", "8"],
        "RawTwilightFlatFrame": ["96", "8"],
    }
    assert (awe_home / "demo").is_dir() and (awe_home / "awe.db").exists()
    # ... then runs ReadNoise on the local DPU: status, logs, committed products
    assert "has status FINISHED N/E/A/S/U 8/0/0/0/0" in result.stdout
    assert "The read noise (ADU) for ccd ccd57 is : " in result.stdout
    assert len([line for line in lines if ": ReadNoise(" in line and "read_noise=" in line]) == 8
    # ... and calibrates the night (flats in #842), then prints the overview: nothing missing
    overview = lines.index("Calibration of WFI for night 2000-04-28: 64 valid, 0 missing")
    assert "MISSING" not in "\n".join(lines[overview:])
    again = _awe("demo", "--scale", "0.0625", timeout=900)
    assert "Simulated night already in" in again.stdout and "0 new frames" in again.stderr
    assert "Bias: a valid BiasFrame for every chip already" in again.stdout
