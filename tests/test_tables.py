"""Rich displays: the tables job lists, options, Pars and frames show as, aligned at the
prompt and escaped in a notebook."""

from __future__ import annotations

from datetime import date

from IPython.lib.pretty import pretty

from awe.db.frame_list import FrameList
from awe.db.frames import BiasFrame, RawBiasFrame
from awe.dpu.pars import Pars
from awe.dpu.processor import Processor
from awe.tables import MAX_ROWS, Table


def test_a_table_aligns_text_and_escapes_html() -> None:
    table = Table(("name", "value"), [["<script>alert(1)</script>", 1.23456], ["b", None]])
    assert table.text().splitlines() == [
        "name                       value",
        "-------------------------  -----",
        "<script>alert(1)</script>  1.235",
        "b",
    ]
    html = table.html()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    long = Table(("n",), [[n] for n in range(MAX_ROWS + 5)])
    assert long.text().endswith("... and 5 more rows") and "and 5 more rows" in long.html()


def test_frames_show_as_a_table_with_their_keys() -> None:
    frames = FrameList(
        [
            RawBiasFrame(id=1, instrument="WFI", chip="ccd50", night=date(2000, 4, 28),
                         object="<b>BIAS</b>", filename="a&b.fits", is_valid=True),
            BiasFrame(id=2, instrument="WFI", chip="ccd50", night=date(2000, 4, 28), object="",
                      filename="bias.fits", job_id=7, is_valid=False, quality_flags=4),
        ]
    )  # fmt: skip
    text = pretty(frames)
    assert text.splitlines()[0] == "2 frames (BiasFrame, RawBiasFrame)"
    assert "1   RawBiasFrame  WFI" in text and "no (flags 4)" in text
    html = frames._repr_html_()
    assert "&lt;b&gt;BIAS&lt;/b&gt;" in html and "a&amp;b.fits" in html and "<b>" not in html


def test_options_and_pars_show_as_tables(awe_home) -> None:
    dpu = Processor(session_log="")
    options = dpu.show_sequence_options("ReadNoise")
    text = pretty(options)
    assert text.splitlines()[0].split() == ["short", "long", "type", "default", "required", "help"]
    assert "i      instrument  str            yes       instrument, e.g. WFI" in text
    assert "C      commit      int   0                  1: store the products" in text
    pars = Pars("Bias", dpu=dpu)
    pars.BiasFrame.process_params.SIGMA_CLIP = 5.0
    shown = pretty(pars)
    assert shown.splitlines()[0] == "Pars('Bias')"
    row = next(line for line in shown.splitlines() if "SIGMA_CLIP" in line)
    assert row.split() == ["BiasFrame.process_params.SIGMA_CLIP", "5.0", "3.0", "yes"]
    assert "<td>BiasFrame.process_params.SIGMA_CLIP</td><td>5.0</td>" in pars._repr_html_()
