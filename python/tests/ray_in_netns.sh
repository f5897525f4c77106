#!/usr/bin/env bash
# Runs test_ray.py inside a new network namespace that has only loopback.
# Ray's servers (GCS, raylet, workers, object manager) listen on every
# interface of their host, whatever address they are given; in this
# namespace the only interface is lo, so nothing the tests start can be
# reached from outside the machine. Needs root (ip netns); .ci/run runs it.
#
#   bash python/tests/ray_in_netns.sh [PYTHON] [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/../.."
python="${1:-python3}"
shift || true
ns="chromatica-ray-$$"
ip netns add "$ns"
trap 'ip netns delete "$ns"' EXIT
ip netns exec "$ns" ip link set lo up
# Bounded: the suite takes about a minute; a hung cluster fails the run.
CHROMATICA_RAY_NETNS=1 timeout 900 ip netns exec "$ns" "$python" -m pytest -q -p no:logging \
    -W ignore::DeprecationWarning python/tests/test_ray.py "$@"
