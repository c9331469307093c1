"""Cross-matching of source lists (pairs and chains) against positions whose true
associations are known, including RA = 0/360 and a pole, and against astropy's matcher."""

from __future__ import annotations

import numpy as np

from awe.science.associate import chains, pairs


def _jitter(ra, dec, rng, arcsec):
    return (
        ra + rng.normal(0, arcsec / 3600, ra.size) / np.cos(np.radians(dec)),
        dec + rng.normal(0, arcsec / 3600, dec.size),
    )


def test_pairs_find_the_true_partners_and_agree_with_astropy() -> None:
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(11)
    ra = rng.uniform(-0.05, 0.05, 500) % 360.0  # across RA = 0
    dec = rng.uniform(-30.05, -29.95, 500)
    ra2, dec2 = _jitter(ra, dec, rng, 0.1)
    shuffle = rng.permutation(500)
    extra_ra, extra_dec = rng.uniform(0.06, 0.1, 50), rng.uniform(-30.05, -29.95, 50)
    ra2 = np.concatenate([(ra2 % 360.0)[shuffle], extra_ra])
    dec2 = np.concatenate([dec2[shuffle], extra_dec])
    first, second, separation = pairs(ra, dec, ra2, dec2, 1.0)
    truth = np.argsort(shuffle)  # where each source of list 1 went in list 2
    assert first.size >= 495 and (second == truth[first]).mean() > 0.99
    assert separation.max() < 1.0
    index, distance, _ = SkyCoord(ra, dec, unit="deg").match_to_catalog_sky(
        SkyCoord(ra2, dec2, unit="deg")
    )
    near = distance.arcsec < 1.0
    assert set(np.flatnonzero(near)) >= set(first)
    assert (index[first] == second).mean() > 0.99
    assert len(set(second)) == second.size  # one to one


def test_chains_follow_a_source_through_many_lists_near_the_pole() -> None:
    rng = np.random.default_rng(12)
    ra, dec = rng.uniform(0, 360, 80), rng.uniform(89.9, 89.99, 80)
    lists = []
    for _ in range(4):  # four dithers, each seeing 90 % of the sources
        seen = rng.random(80) < 0.9
        r, d = _jitter(ra[seen], dec[seen], rng, 0.05)
        lists.append((r % 360.0, d, np.flatnonzero(seen)))
    groups = chains([(r, d) for r, d, _ in lists], 0.5)
    members_of = {}
    for group in groups:
        ids = {int(lists[li][2][si]) for li, si in group}
        assert len(ids) == 1  # every chain is one true source
        members_of[ids.pop()] = len(group)
    seen_twice = [s for s in range(80) if sum(s in seen[2] for seen in lists) >= 2]
    assert set(members_of) == set(seen_twice)
    for source, count in members_of.items():
        assert count == sum(source in seen[2] for seen in lists)
    assert chains([(np.empty(0), np.empty(0))], 1.0) == []


def test_sourcelists_then_associatelist_through_the_dpu(tmp_path_factory, database_url) -> None:
    from astropy.io import fits

    from awe.data.store import DataStore
    from awe.db.engine import open_database
    from awe.db.frames import AssociateList, SourceList
    from awe.dpu import Processor
    from tests.pipeline_night import NIGHT, ingested_night

    database = open_database(database_url)
    ingested_night(tmp_path_factory.getbasetemp(), database, chips=("ccd51",))
    dpu = Processor(database_url=database_url, username="alice")
    job_id = dpu.run("Reduce>SourceList", i="WFI", d=NIGHT, c="ccd51", f="#842", o="AWE*", C=1)
    (status,) = dpu.wait(job_id, timeout=300)
    assert status.counts["N"] == 6, dpu.get_logs(job_id)
    lists = SourceList.select(database=dpu.database, instrument="WFI")
    assert len(lists) == 3
    # a reduced frame's ra/dec come from its header WCS, off by the pointing error (3 arcsec
    # rms, different for each dither): only some sources chain at 2 arcsec, which is enough
    # here; the science tests above check the matching itself
    job_id = dpu.run("AssociateList", i="WFI", f="#842", r=2.0, C=1)
    (status,) = dpu.wait(job_id, timeout=300)
    logs = "\n".join(dpu.get_logs(job_id)[job_id])
    assert status.counts["N"] == 1, logs
    (product,) = AssociateList.select(database=dpu.database, instrument="WFI")
    assert product.results["lists"] == 3 and product.results["chains"] >= 5, logs
    table = fits.getdata(DataStore(dpu.env.data_root).path(product.sha256), "ASSOCIATIONS")
    assert len(np.unique(table["GROUP"])) == product.results["chains"]
    for group in np.unique(table["GROUP"]):  # each chain links at least two of the lists
        members = table[table["GROUP"] == group]
        assert len(set(members["SOURCELIST_ID"])) >= 2
        assert set(members["SOURCELIST_ID"]) <= {s.id for s in lists}
    assert "Associated 3 lists within 2.00 arcsec" in logs
    database.dispose()
