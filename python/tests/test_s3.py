"""An index on S3 (moto's server on loopback, started here) through the
Python package: create, train, add and search on ``s3://bucket/prefix``,
configured by the AWS environment variables, give the same results as the
same calls on a local directory; another handle (another cache) opens it
read-only. Skipped, saying so, when ``moto_server`` is not installed."""

import os

import pytest

import chromatica
from conftest import aws_env, clustered, moto_server


@pytest.fixture
def moto_env(tmp_path, monkeypatch):
    with moto_server("pybucket") as endpoint:
        for k, v in aws_env(endpoint).items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("CHROMATICA_CACHE_DIR", str(tmp_path / "cache"))
        yield


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_index_on_s3_matches_a_local_one(tmp_path, moto_env):
    xb = clustered(2000, 32, seed=1)
    xq = clustered(20, 32, seed=2)
    results = []
    for path in [tmp_path / "local", "s3://pybucket/photos/idx"]:
        with chromatica.Index.create(path, dim=32, nlist=16, m=8, nbits=8, nprobe=4) as index:
            index.train(xb)
            index.add(xb)
            results.append(index.search(xq, 10))
    (dl, il), (ds, is_) = results
    assert (il == is_).all() and (dl == ds).all()
    os.environ["CHROMATICA_CACHE_DIR"] = str(tmp_path / "other-cache")
    with chromatica.Index.open("s3://pybucket/photos/idx", read_only=True) as reader:
        d2, i2 = reader.search(xq, 10)
    assert (i2 == il).all() and (d2 == dl).all()


def test_a_malformed_s3_address_is_one_clear_error(moto_env):
    with pytest.raises(Exception, match="not a valid bucket name"):
        chromatica.Index.open("s3://Bad_Bucket/x")
