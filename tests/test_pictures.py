"""Tests of pictures/make_pictures.py, the one script that draws every diagram."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

PICTURES_DIR = Path(__file__).resolve().parents[1] / "pictures"
SCRIPT = PICTURES_DIR / "make_pictures.py"
EXPECTED = [
    "vae",
    "vae_timeseries",
    "odevae",
    "sma_example",
    "coordinate_system",
    "diffprog_overview",
]


def load_script():
    spec = importlib.util.spec_from_file_location("make_pictures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script_output(tmp_path_factory):
    """Run the script as a user would, into a temporary folder."""
    out_dir = tmp_path_factory.mktemp("pictures")
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out_dir)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MPLBACKEND": "Agg"},
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return out_dir


def test_script_writes_every_expected_file(script_output):
    written = sorted(path.name for path in script_output.iterdir())
    expected = sorted(f"{name}.{fmt}" for name in EXPECTED for fmt in ("png", "svg"))
    assert written == expected


@pytest.mark.parametrize("name", EXPECTED)
def test_png_is_a_valid_non_trivial_image(script_output, name):
    path = script_output / f"{name}.png"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= 600 and image.height >= 300
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    # mostly white background, but real drawing on it, in colour
    dark = (pixels.sum(axis=2) < 300).mean()
    assert 0.002 < dark < 0.5
    colourful = (pixels.max(axis=2) - pixels.min(axis=2) > 60).mean()
    assert colourful > 0.001


@pytest.mark.parametrize("name", EXPECTED)
def test_svg_is_well_formed_and_keeps_text_as_text(script_output, name):
    root = ElementTree.parse(script_output / f"{name}.svg").getroot()
    assert root.tag.endswith("svg")
    texts = [element for element in root.iter() if element.tag.endswith("text")]
    assert texts, "labels should stay editable text in the SVG"


def test_committed_pictures_have_the_size_the_script_draws(script_output):
    for name in EXPECTED:
        with (
            Image.open(PICTURES_DIR / f"{name}.png") as committed,
            Image.open(script_output / f"{name}.png") as fresh,
        ):
            assert committed.size == fresh.size, name


def test_output_is_reproducible(script_output, tmp_path):
    module = load_script()
    module.make_pictures(tmp_path, names=["odevae"], formats=["png", "svg"])
    for fmt in ("png", "svg"):
        fresh = (tmp_path / f"odevae.{fmt}").read_bytes()
        assert fresh == (script_output / f"odevae.{fmt}").read_bytes()


def test_bad_names_and_formats_raise_value_error(tmp_path):
    module = load_script()
    with pytest.raises(ValueError, match="unknown diagram names"):
        module.make_pictures(tmp_path, names=["elephant"])
    with pytest.raises(ValueError, match="formats"):
        module.make_pictures(tmp_path, names=["vae"], formats=["gif"])
    assert not any(tmp_path.iterdir())
