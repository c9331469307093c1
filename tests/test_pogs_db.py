"""POGS tables on SQLite and MariaDB: runs, galaxy registration, fits2wu and its order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from awe.db.pogs import (
    AreaState,
    PogsArea,
    PogsFilter,
    PogsGalaxy,
    PogsPixelResult,
    PogsRegister,
    PogsRun,
)
from awe.science.workunits import parse_observations
from awe.wu.assimilate import workunit_inputs
from awe.wu.fits2wu import Settings, fits2wu, waiting_results
from awe.wu.galaxies import GalaxyError, register_galaxy
from awe.wu.library import file_details, load_library
from awe.wu.runs import RunError, library_paths, register_run
from awe.wu.simulate import simulate_galaxy
from awe.wu_demo import setup_demo_run


@pytest.fixture
def run(database, tmp_path: Path) -> Path:
    folder = tmp_path / "run0001"
    setup_demo_run(database, folder)
    return folder


def galaxy_file(database, folder: Path, name: str, shape=(7, 10), seed=0) -> Path:
    library = load_library(*library_paths(database, 1, "0.0300"))
    return simulate_galaxy(library, folder / f"POGS_{name}.fits", shape=shape, seed=seed)


def test_migration_seeds_the_pogs_filters(database) -> None:
    with database.session() as session:
        filters = session.scalars(select(PogsFilter)).all()
    assert len(filters) == 34
    by_number = {f.filter_number: f for f in filters}
    assert by_number[231].name == "SDSSr" and by_number[231].optical
    assert by_number[123].ultraviolet and by_number[283].infrared


def test_register_run_records_filters_and_library_files(database, run: Path) -> None:
    with database.session() as session:
        registered = session.get(PogsRun, 1)
        names = [f.name for f in registered.filters]
        files = [(f.name, f.md5, f.size) for f in registered.files]
    assert names[:3] == ["GALEXFUV", "GALEXNUV", "SDSSu"] and len(names) == 11
    assert len(files) == 24  # SFH and IR at 12 redshifts
    name, md5, size = files[0]
    assert (md5, size) == file_details(run / name)


def test_an_unknown_filter_rolls_the_whole_run_back(database, tmp_path: Path) -> None:
    folder = tmp_path / "run0002"
    folder.mkdir()
    (folder / "filters.dat").write_text(
        "#name lambda filter_id fit\nSDSSr 0.62 231 1\nXX 1 999 1\n"
    )
    with pytest.raises(RunError, match="filter_id 999"):
        register_run(database, 2, folder, "bad", 1.0, 1.0)
    with database.session() as session:
        assert session.get(PogsRun, 2) is None


def test_register_galaxy_checks_layers_and_redshift(database, run: Path, tmp_path: Path) -> None:
    path = galaxy_file(database, tmp_path, "G1")
    with pytest.raises(GalaxyError, match="beyond the model grid"):
        register_galaxy(database, path, "0.1251", "G1", "Sb", "0.1", 0, 1)
    edge = register_galaxy(database, path, "0.125", "G0", "Sb", "0.1", 0, 1)  # -> 0.1249
    rid = register_galaxy(database, path, "0.0350", "G1", "Sb", "0.1", 0, 1, ["demo", "disc"])
    with database.session() as session:
        assert str(session.get(PogsRegister, edge).redshift) == "0.1249000"
        row = session.get(PogsRegister, rid)
        assert str(row.redshift) == "0.0349000" and sorted(t.tag_text for t in row.tags) == [
            "demo",
            "disc",
        ]
    bad = tmp_path / "bad.fits"
    with fits.open(path) as hdul:
        hdul[3].header["MAGPHYSN"] = "PS1q"
        hdul.writeto(bad)
    with pytest.raises(GalaxyError, match="PS1q"):
        register_galaxy(database, bad, "0.03", "G2", "Sb", "0.1", 0, 1)


def test_fits2wu_cuts_galaxies_in_priority_order(database, run: Path, tmp_path: Path) -> None:
    low = register_galaxy(
        database, galaxy_file(database, tmp_path, "LOW"), "0.03", "LOW", "E", "0.1", 0, 1
    )
    high = register_galaxy(
        database, galaxy_file(database, tmp_path, "HIGH", seed=1), "0.03", "HIGH", "Sb", "0.1", 5, 1
    )
    data = tmp_path / "data"
    made = fits2wu(database, data, Settings(min_pixels_per_file=(15,)), log=lambda _: None)
    with database.session() as session:
        galaxies = {g.galaxy_id: g for g in session.scalars(select(PogsGalaxy))}
        assert [galaxies[g].name for g in made] == ["HIGH", "LOW"]
        assert [galaxies[g].register_id for g in made] == [high, low]
        areas = session.scalars(select(PogsArea).order_by(PogsArea.area_id)).all()
        pixels = session.scalars(select(PogsPixelResult)).all()
        assert (
            sum(a.pixels for a in areas)
            == len(pixels)
            == sum(g.pixel_count for g in galaxies.values())
        )
        assert all(a.pixels >= 15 or a.bottom_x == 9 for a in areas)
    header, names, flux, sigma = parse_observations(Path(areas[0].observations).read_text())
    assert header["area_id"] == areas[0].area_id and len(names) == areas[0].pixels
    assert np.allclose(sigma[flux > 0], 0.1 * flux[flux > 0], rtol=1e-6)
    order = [wu["galaxy"] for wu in workunit_inputs(database, 1)]
    assert order == sorted(order, key=lambda name: name != "HIGH")  # HIGH's units first


def test_threshold_stops_fits2wu(database, run: Path, tmp_path: Path) -> None:
    for n in range(2):
        register_galaxy(
            database,
            galaxy_file(database, tmp_path, f"G{n}", seed=n),
            "0.03",
            f"G{n}",
            "E",
            "0.1",
            0,
            1,
        )
    settings = Settings(threshold=1, high_water_mark=0)
    first = fits2wu(database, tmp_path / "data", settings, log=lambda _: None)
    assert len(first) == 1  # one whole galaxy reaches the target
    waiting = waiting_results(database, 1)
    assert waiting >= 1
    assert fits2wu(database, tmp_path / "data", settings, log=lambda _: None) == []
    with database.session() as session:
        pending = session.scalars(select(PogsRegister).where(PogsRegister.create_time.is_(None)))
        assert len(pending.all()) == 1
        assert all(a.state == AreaState.CREATED.value for a in session.scalars(select(PogsArea)))


def test_awe_wu_commands(awe_home: Path, tmp_path: Path, capsys) -> None:
    """register-run with the shipped library, register-galaxy and fits2wu from the CLI."""
    from awe.cli import main

    folder = tmp_path / "run0003"
    folder.mkdir()
    (folder / "filters.dat").write_text(
        "#name lambda_eff filter_id fit?\nGALEXNUV 0.231 124 1\nSDSSu 0.3534 229 1\n"
        "SDSSg 0.4742 230 1\nSDSSr 0.6189 231 1\nSDSSi 0.7595 232 1\nWISEW1 3.4 280 1\n"
    )
    args = ["wu", "register-run", "3", str(folder), "six bands", "1.26", "1.82"]
    assert main([*args, "--demo-library"]) == 0
    assert "Registered run 3: 6 filters, 24 library files" in capsys.readouterr().out
    assert main(args) == 2  # the run exists already
    assert "exists already" in capsys.readouterr().err
    image = tmp_path / "POGS_C.fits"
    layers = [fits.PrimaryHDU()]
    for name in ("SDSSg", "SDSSr", "SDSSi", "SDSSu", "WISEW1"):
        layer = fits.ImageHDU(np.full((7, 5), 1e-5, np.float32))
        layer.header["MAGPHYSN"] = name
        layers.append(layer)
    fits.HDUList(layers).writeto(image)
    assert main(["wu", "register-galaxy", str(image), "0.05", "C", "E", "0.1", "1", "3"]) == 0
    assert main(["wu", "fits2wu"]) == 0
    out = capsys.readouterr().out
    assert "galaxy 1, 2 work units" in out  # 35 pixels, columns of 7: 21 (>= 15), then 14
