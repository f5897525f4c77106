"""The colour API on generated PNGs: indexing with progress, colour and
image queries, histograms."""

import os

import numpy as np
import pytest

import chromatica

Image = pytest.importorskip("PIL.Image")

PALETTES = {
    "red": [(220, 20, 30), (250, 240, 230)],
    "blue": [(20, 40, 200), (240, 240, 250)],
    "yellow": [(240, 210, 20), (40, 40, 40)],
}


def paint(path, colors, seed):
    """A 48 x 48 image: the first colour on about 70% of the pixels, with noise."""
    rng = np.random.default_rng(seed)
    a = np.empty((48, 48, 3), np.float64)
    a[:] = colors[1]
    a[: 34] = colors[0]
    a += rng.normal(0, 6, a.shape)
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    for name, colors in PALETTES.items():
        (root / name).mkdir(parents=True)
        for i in range(8):
            paint(root / name / f"{name}{i}.png", colors, seed=hash((name, i)) % 1000)
    return root


def test_index_search_colors_and_image(tmp_path, photos):
    events = []
    with chromatica.ImageLibrary(tmp_path / "lib") as lib:
        summary = lib.index([photos], progress=lambda e, n: events.append((e, n)))
        assert summary["added"] == 24 and summary["failed"] == [] and len(lib) == 24
        assert ("planned", 24) in events and events.count(("decoded", 1)) == 24
        for name, colors in PALETTES.items():
            hexes = ["%02x%02x%02x" % c for c in colors]
            hits = lib.search_colors(hexes, weights=[0.7, 0.3], k=8)
            assert len(hits) == 8
            assert all(f"{os.sep}{name}{os.sep}" in h["path"] for h in hits), (name, hits)
            assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
            top = hits[0]
            assert set(top) == {"id", "path", "distance", "dominant_colors"}
            hexcol, share = top["dominant_colors"][0]
            assert hexcol.startswith("#") and len(hexcol) == 7 and 0 < share <= 1
        query = photos / "blue" / "blue3.png"
        hits = lib.search_image(query, k=5)
        # Not 0: the stored histogram is the image's with 16-bit values
        # (FORMAT.md, "Refine store"), well under 0.01 ΔE away.
        assert hits[0]["path"] == str(query.resolve()) and hits[0]["distance"] == pytest.approx(0, abs=1e-2)
        assert all(f"{os.sep}blue{os.sep}" in h["path"] for h in hits)
        by_hist = lib.search_histogram(chromatica.histogram(query), k=1)
        assert by_hist[0]["path"] == hits[0]["path"]
        # In step: nothing to do; a deleted file is removed (tqdm bar when installed).
        assert lib.index(str(photos), progress=True)["unchanged"] == 24
        os.remove(photos / "red" / "red0.png")
        again = lib.index([photos], progress=False)
        assert again["removed"] == [str((photos / "red" / "red0.png").resolve())] and len(lib) == 23
        assert lib.inspect()["vectors"] == 23


def test_library_reopens_and_refuses_bad_queries(tmp_path, photos):
    lib = chromatica.ImageLibrary(tmp_path / "lib")
    lib.index([photos / "red"], progress=False)
    with pytest.raises(chromatica.LockedError):
        chromatica.ImageLibrary(tmp_path / "lib")
    with pytest.raises(ValueError, match="zz"):
        lib.search_colors(["zzzzzz"])
    with pytest.raises(ValueError, match="weights for"):
        lib.search_colors(["ff0000", "00ff00"], weights=[1.0])
    with pytest.raises(ValueError, match="one hex colour"):
        lib.search_colors(["ff0000:0.5"])
    with pytest.raises(ValueError, match="at least one"):
        lib.search_colors([])
    with pytest.raises(ValueError, match="k must be at least 1"):
        lib.search_colors(["ff0000"], k=0)
    with pytest.raises(FileNotFoundError):
        lib.search_image(tmp_path / "nope.png")
    with pytest.raises(FileNotFoundError):
        lib.index([tmp_path / "no-such-folder"], progress=False)
    lib.close()
    with pytest.raises(ValueError, match="closed"):
        lib.search_colors(["ff0000"])
    with chromatica.ImageLibrary(tmp_path / "lib") as again:
        assert len(again) == 8
    # A folder of photos is not a library: refused, nothing written.
    with pytest.raises(FileExistsError):
        chromatica.ImageLibrary(photos / "blue")


def test_histogram_hellinger_dominant_colors(tmp_path):
    path = tmp_path / "teal.png"
    Image.new("RGB", (16, 16), (0, 128, 128)).save(path)
    h = chromatica.histogram(path)
    assert h.dtype == np.float32 and h.shape == (chromatica.HIST_DIM,) == (1152,)
    assert h.sum() == pytest.approx(1.0, abs=1e-5) and (h >= 0).all()
    assert chromatica.dominant_colors(h, 3)[0][0] == "#008080"
    s = chromatica.hellinger(h)
    np.testing.assert_allclose(s, np.sqrt(h), rtol=1e-6)
    assert np.linalg.norm(s) == pytest.approx(1.0, abs=1e-5)
    two = chromatica.hellinger(np.stack([h, h]))
    assert two.shape == (2, 1152)
    with pytest.raises(ValueError, match="non-negative"):
        chromatica.hellinger(-h)
    (tmp_path / "not.png").write_bytes(b"hello")
    with pytest.raises(ValueError):
        chromatica.histogram(tmp_path / "not.png")
    with pytest.raises(FileNotFoundError):
        chromatica.histogram(tmp_path / "missing.png")


def test_tqdm_progress_when_installed(tmp_path, photos, capsys):
    pytest.importorskip("tqdm")
    with chromatica.ImageLibrary(tmp_path / "lib") as lib:
        lib.index([photos / "yellow"], progress=True)
    err = capsys.readouterr().err
    assert "indexing" in err and "8/8" in err, err


def test_query_language_fuzz_fast_exclude(tmp_path, photos):
    with chromatica.ImageLibrary(tmp_path / "lib") as lib:
        lib.index([photos], progress=False)
        red = "%02x%02x%02x" % PALETTES["red"][0]
        exact = lib.search_colors([red], k=8)
        assert all(f"{os.sep}red{os.sep}" in h["path"] for h in exact)
        # "Not red": every red image holds ~70% red, far over the 5% allowed.
        hits = lib.search_colors([red], k=8, exclude=[red])
        assert len(hits) == 8 and not any(f"{os.sep}red{os.sep}" in h["path"] for h in hits)
        # A share above theirs lets them back in.
        assert lib.search_colors([red], k=8, exclude=[red + ":0.95"]) == exact
        # Fuzz forgives colour distance: the i-th nearest is never farther
        # than without it (a smaller ground distance everywhere).
        fuzzed = lib.search_colors([red], k=8, fuzz=10)
        assert all(f"{os.sep}red{os.sep}" in h["path"] for h in fuzzed)
        assert all(f["distance"] <= e["distance"] + 1e-6 for f, e in zip(fuzzed, exact))
        assert fuzzed[0]["distance"] < exact[0]["distance"]
        fast = lib.search_colors([red], k=8, fast=True)
        assert len(fast) == 8 and all(f"{os.sep}red{os.sep}" in h["path"] for h in fast)
        for kwargs, msg in [
            (dict(fuzz=500), "fuzz"),
            (dict(fuzz=float("nan")), "fuzz"),
            (dict(fast=True, fuzz=5), "fast"),
            (dict(exclude=[]), "exclude"),
            (dict(exclude=["nothex"]), "nothex"),
            (dict(exclude=[red], exclude_radius=0), "radius"),
            (dict(exclude_radius=10), "exclude_radius needs exclude"),
            (dict(rerank="bogus"), "rerank must be"),
        ]:
            with pytest.raises(ValueError, match=msg):
                lib.search_colors([red], **kwargs)
