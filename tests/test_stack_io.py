"""Focus units and reading real stacks: conversions, validation, order, EXIF."""

from __future__ import annotations

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest

from dflib import io


def _write(path, value, size=(6, 8)):
    iio.imwrite(path, np.full(size + (3,), value, np.uint8))


def test_units_convert_by_hand():
    np.testing.assert_allclose(io.focus_to_diopters([0.25, 0.5, math.inf], "m"), [4.0, 2.0, 0.0])
    np.testing.assert_allclose(io.focus_to_diopters([4.0, 0.0], "diopter"), [4.0, 0.0])
    np.testing.assert_allclose(io.diopters_to_metres([4.0, 2.0, 0.0]), [0.25, 0.5, math.inf])
    with pytest.raises(ValueError, match="disparity"):
        io.focus_to_diopters([1.0], "disparity")


def test_near_to_far_order_per_unit():
    # metres and indices grow away from the camera; dioptres and disparities toward it
    assert io.near_to_far(np.array([1.5, 0.3, 0.1]), "m").tolist() == [2, 1, 0]
    assert io.near_to_far(np.array([0.0, 2.0, 10.0]), "diopter").tolist() == [2, 1, 0]
    assert io.near_to_far(np.array([0.28, 0.1, 0.02]), "disparity").tolist() == [0, 1, 2]
    assert io.near_to_far(np.array([7.0, 3.0]), "index").tolist() == [1, 0]


def test_parse_focus_value():
    assert io.parse_focus_value("inf") == math.inf and io.parse_focus_value("∞") == math.inf
    assert io.parse_focus_value(" 0.5 ") == 0.5
    with pytest.raises(ValueError, match="--focus: 'far' is not a number"):
        io.parse_focus_value("far")


@pytest.mark.parametrize("values, unit, message", [
    ([0.1, 0.0, 0.5], "m", "focus: value 2 of 3 is 0 m; distances must be > 0 m"),
    ([-0.2, 0.3], "m", "focus: value 1 of 2 is -0.2 m"),
    ([0.1, float("nan"), 0.5], "m", "focus: value 2 of 3 is NaN"),
    ([0.1, 0.3, 0.2], "m", r"focus: \[0.1, 0.3, 0.2\] m is not monotonic"),
    ([0.1, 0.3, 0.3], "m", "0.3 m appears twice"),
    ([0.2, "inf", "inf"], "m", "inf m appears twice"),
    ([5.0, -1.0], "diopter", "value 2 of 2 is -1 dioptres"),
    ([5.0, math.inf], "diopter", "dioptres must be finite"),
    ([0.2, -0.1], "disparity", "disparities must be finite and >= 0"),
    ([1, 2], "inches", "--focus-unit: expected one of m, diopter, disparity, index, got 'inches'"),
])
def test_bad_focus_is_one_line_naming_argument_and_value(values, unit, message):
    with pytest.raises(ValueError, match=message) as err:
        io.check_focus_values(values, unit)
    assert "\n" not in str(err.value)


def test_valid_focus_in_every_unit():
    np.testing.assert_array_equal(io.check_focus_values([0.1, "0.3", "inf"], "m"), [0.1, 0.3, math.inf])
    np.testing.assert_array_equal(io.check_focus_values([10, 2, 0], "diopter"), [10, 2, 0])
    np.testing.assert_array_equal(io.check_focus_values([-3, 0, 40], "index"), [-3, 0, 40])


def test_load_stack_from_a_folder_in_natural_order_far_to_near(tmp_path):
    for name, v in (("img10.png", 30), ("img2.png", 20), ("img1.png", 10)):
        _write(tmp_path / name, v)
    # frames in name order img1, img2, img10 were focused far to near (metres decreasing)
    st = io.load_stack(tmp_path, focus=[2.0, 0.5, 0.25])
    assert [p.name for p in st.paths] == ["img10.png", "img2.png", "img1.png"]  # near to far
    np.testing.assert_array_equal(st.focus, [0.25, 0.5, 2.0])
    np.testing.assert_allclose(st.images[:, 0, 0, 0] * 255, [30, 20, 10], atol=1e-4)
    assert st.images.shape == (3, 3, 6, 8) and st.images.dtype == np.float32
    np.testing.assert_allclose(st.focus_diopters, [4.0, 2.0, 0.5])
    # in dioptres (Android's LENS_FOCUS_DISTANCE), 0 = infinity
    st = io.load_stack([tmp_path / "img1.png", tmp_path / "img2.png", tmp_path / "img10.png"],
                       focus=[0, 2, 8], focus_unit="diopter")
    assert [p.name for p in st.paths] == ["img10.png", "img2.png", "img1.png"]
    np.testing.assert_array_equal(st.focus, [8, 2, 0])


def test_load_stack_reads_focus_json_and_sorts(tmp_path):
    for i in range(3):
        _write(tmp_path / f"{i}.png", 10 * i)
    _write(tmp_path / "aif.png", 99)  # not a frame: focus.json names the frames
    (tmp_path / "focus.json").write_text(json.dumps({"images": ["0.png", "1.png", "2.png"], "focus_m": [0.7, 0.1, 0.3]}))
    st = io.load_stack(tmp_path)
    assert st.focus_source == "focus.json" and st.focus.tolist() == [0.1, 0.3, 0.7]
    assert [p.name for p in st.paths] == ["1.png", "2.png", "0.png"]


def test_load_stack_errors(tmp_path):
    _write(tmp_path / "a.png", 1)
    _write(tmp_path / "b.png", 2, size=(6, 9))
    _write(tmp_path / "c.png", 3)
    with pytest.raises(ValueError, match="all frames must have the same size, but 'a.png' is 8x6 and 'b.png' is 9x6"):
        io.load_stack(tmp_path, focus=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="focus: got 3 images but 2 focus distances"):
        io.load_stack(tmp_path, focus=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"focus: not given.*\(--focus 1 2 --focus-unit index\)"):
        io.load_stack([tmp_path / "a.png", tmp_path / "c.png"])
    hinted = io.load_stack([tmp_path / "a.png", tmp_path / "c.png"], focus=[1, 2], focus_unit="index")  # what it says works
    assert hinted.focus.tolist() == [1.0, 2.0] and hinted.focus_unit == "index"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        io.load_stack([tmp_path / "a.png", tmp_path / "nope.png"], focus=[0.1, 0.2])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image files"):
        io.load_stack(empty, focus=[0.1])


def _jpeg_with_exif(path, value, subject_distance=None):
    from PIL import ExifTags, Image

    exif = Image.Exif()  # written with Pillow directly, independently of dflib.io.write_image
    exif[ExifTags.Base.Make] = "Acme"
    exif[ExifTags.Base.Model] = "Phone 1"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.FocalLength] = 4.2
    sub[ExifTags.Base.FNumber] = 1.8
    sub[ExifTags.Base.ExposureTime] = 0.008
    sub[ExifTags.Base.ISOSpeedRatings] = 100
    if subject_distance is not None:
        sub[ExifTags.Base.SubjectDistance] = subject_distance
    Image.fromarray(np.full((6, 8, 3), value, np.uint8)).save(path, exif=exif, quality=95)


def test_write_image_with_exif_round_trips(tmp_path):
    exif = {"make": "Acme", "model": "P2", "focal_length_mm": 5.6, "f_number": 1.9, "exposure_s": 0.01, "iso": 200}
    io.write_image(tmp_path / "a.jpg", np.full((3, 6, 8), 0.5, np.float32), exif=exif)
    got = io.read_exif(tmp_path / "a.jpg")
    assert got == pytest.approx(exif)
    assert abs(io.read_image(tmp_path / "a.jpg")[0, 0, 0] - 0.5) < 3 / 255
    with pytest.raises(ValueError, match="exif: unknown keys"):
        io.write_image(tmp_path / "b.jpg", np.zeros((6, 8, 3)), exif={"lens": "x"})


def test_exif_is_recorded_and_gives_focus(tmp_path):
    for i, d in enumerate((0.5, 0.2, 1.0)):
        _jpeg_with_exif(tmp_path / f"f{i}.jpg", 40 * i, d)
    st = io.load_stack(tmp_path)
    assert st.focus_source == "exif" and st.focus.tolist() == [0.2, 0.5, 1.0]
    assert [p.name for p in st.paths] == ["f1.jpg", "f0.jpg", "f2.jpg"]
    e = st.exif[0]
    assert e["make"] == "Acme" and e["model"] == "Phone 1" and e["iso"] == 100
    assert e["focal_length_mm"] == pytest.approx(4.2) and e["f_number"] == pytest.approx(1.8)
    assert e["exposure_s"] == pytest.approx(0.008) and e["subject_distance_m"] == pytest.approx(0.2)
    assert io.describe_camera(e) == "Acme Phone 1, f = 4.2 mm, f/1.8, 1/125 s, ISO 100"
    # given focus wins over EXIF; a PNG without EXIF records nothing
    assert io.load_stack(tmp_path, focus=[1, 2, 3], focus_unit="index").focus_source == "given"
    _write(tmp_path / "plain.png", 5)
    assert io.read_exif(tmp_path / "plain.png") == {}


def test_write_depth_handles_infinity(tmp_path):
    depth = np.array([[0.5, np.inf]], np.float32)
    paths = io.write_depth(tmp_path / "d", depth, meta={"focus_unit": "m"})
    assert iio.imread(paths["png"]).tolist() == [[500, 65535]]
    meta = json.loads(paths["json"].read_text())
    assert meta["unit"] == "m" and meta["focus_unit"] == "m"
    io.write_colormap(tmp_path / "c.png", depth)
    img = iio.imread(tmp_path / "c.png")
    assert img.shape == (1, 2, 3) and img.dtype == np.uint8 and not np.array_equal(img[0, 0], img[0, 1])


def test_focus_values_from_arrays_and_tensors():
    import torch

    np.testing.assert_allclose(io.check_focus_values(np.array([0.1, 0.3], np.float32)), [0.1, 0.3], rtol=1e-6)
    np.testing.assert_allclose(io.check_focus_values(torch.tensor([2.0, 1.0]), "diopter"), [2.0, 1.0])
