"""chromatica.compat.AnnIndex running the original service's documented
usage: construct, train, add raw histograms, search one query, memory
estimate, save and load (also a faiss .bin file)."""

import numpy as np
import pytest

from chromatica import Index
from chromatica.compat import AnnIndex

# Small training sets on purpose; the library warns that they are small.
pytestmark = pytest.mark.filterwarnings("ignore:.*training points are few:UserWarning")


def histograms(n, seed=0, dim=1152):
    """Sparse, non-negative rows that sum to 1, like colour histograms."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, dim), np.float64)
    for row in x:
        cols = rng.choice(dim, size=40, replace=False)
        row[cols] = rng.random(40) ** 3
    return x / x.sum(1, keepdims=True)


def test_documented_usage(tmp_path):
    data = histograms(3000)
    index = AnnIndex(dimension=1152, nlist=16, M=8, nbits=8)
    assert not index.is_trained and index.total_vectors == 0
    with pytest.raises(ValueError, match="trained"):
        index.add(data)
    index.train(data)  # float64 accepted, Hellinger applied inside
    assert index.is_trained
    assert index.add(data) == 3000
    assert index.total_vectors == index.get_total_vectors() == 3000
    D, I = index.search(data[17], k=5)
    assert D.shape == I.shape == (1, 5) and I.dtype == np.int64 and D.dtype == np.float32
    assert I[0, 0] == 17
    D2, I2 = index.search(data[17:18].astype(np.float32), k=5)
    assert (I2 == I).all()
    # Distances: squared L2 between Hellinger vectors estimated from the PQ
    # codes (as faiss reports them), ascending.
    assert np.isfinite(D).all() and (np.diff(D[0]) >= 0).all()

    mem = index.get_memory_usage_estimate()
    assert set(mem) >= {"total_vectors", "memory_per_vector", "total_memory", "compression_ratio",
                        "full_vector_memory"}
    assert mem["total_vectors"] == 3000 and mem["full_vector_memory"] == 1152 * 4
    d = mem["details"]
    # Every byte: codes, ids, quantizers, the table, directories, headers.
    assert mem["total_memory"] >= d["code_bytes"] + d["id_bytes"] + d["quantizer_bytes"] + d["precomputed_table_bytes"]
    assert mem["memory_per_vector"] > 8 + 4  # more than the original's 8-byte (M * nbits / 8) figure
    assert mem["compression_ratio"] == pytest.approx(4608 / mem["memory_per_vector"])

    index.save(tmp_path / "saved.idx")
    with Index.open(tmp_path / "saved.idx", read_only=True) as copy:
        assert copy.ntotal == 3000 and copy.verify()["vectors"] == 3000
    with pytest.raises(FileExistsError):
        index.save(tmp_path / "saved.idx")
    index.close()

    loaded = AnnIndex(dimension=1152, index_path=str(tmp_path / "saved.idx"))
    assert loaded.total_vectors == 3000 and (loaded.nlist, loaded.M) == (16, 8)
    assert (loaded.search(data[17], k=5)[1] == I).all()
    loaded.close()


def test_original_checks(tmp_path):
    index = AnnIndex(dimension=1152, nlist=4, M=8, nbits=8)
    data = histograms(1200, seed=1)
    index.train(data)
    index.add(data)
    with pytest.raises(ValueError, match="numpy array"):
        index.add(data.tolist())
    with pytest.raises(ValueError, match="2D"):
        index.add(data[0])
    with pytest.raises(ValueError, match="dimension 10"):
        index.add(data[:, :10])
    with pytest.raises(ValueError, match="1D or"):
        index.search(data[:2], 3)
    with pytest.raises(ValueError, match="k must be positive"):
        index.search(data[0], 0)
    with pytest.raises(ValueError, match="k must be positive"):
        index.search(data[0], 1201)
    with pytest.raises(ValueError, match="non-negative"):
        index.add(-data[:2])
    with pytest.raises(FileNotFoundError):
        index.load(tmp_path / "missing.bin")
    index.close()


def test_simple_index_is_exact():
    data = histograms(500, seed=2)
    with AnnIndex(dimension=1152, use_simple_index=True) as index:
        assert index.is_trained
        index.train(data)  # nothing to do
        index.add(data)
        D, I = index.search(data[42], k=3)
        h = np.sqrt(data)
        truth = np.argsort(((h - h[42]) ** 2).sum(1))[:3]
        assert (I[0] == truth).all()


def test_load_imports_a_faiss_file(tmp_path):
    faiss = pytest.importorskip("faiss")
    data = histograms(2000, seed=3).astype(np.float32)
    h = np.sqrt(data)
    q = faiss.IndexFlatL2(1152)
    ivf = faiss.IndexIVFPQ(q, 1152, 8, 8, 8)
    ivf.train(h)
    ivf.add(h)
    ivf.nprobe = 8
    faiss.write_index(ivf, str(tmp_path / "original.bin"))
    fD, fI = ivf.search(h[:5], 4)
    index = AnnIndex(dimension=1152, index_path=str(tmp_path / "original.bin"))
    assert index.total_vectors == 2000 and index.nlist == 8
    for i in range(5):
        D, I = index.search(data[i], 4)
        # Imported codes and quantizers: faiss's neighbours.
        assert set(I[0]) == set(fI[i]), (I, fI[i])
        np.testing.assert_allclose(np.sort(D[0]), np.sort(fD[i]), rtol=1e-3, atol=1e-4)
    index.close()
