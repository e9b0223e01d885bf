"""client-go's token bucket on virtual time (util/flowcontrol)."""

import pytest

from k8sbook.client.flowcontrol import NeverRateLimiter, TokenBucketRateLimiter


def test_token_bucket_starts_full_and_refills_at_qps():
    now = [0.0]
    bucket = TokenBucketRateLimiter(0.1, 1, lambda: now[0])
    assert bucket.try_accept() and not bucket.try_accept()
    now[0] = 9.9
    assert not bucket.try_accept()
    now[0] = 10.0  # one token every 10 s: full again
    assert bucket.try_accept()
    now[0] = 100.0  # never more than burst
    assert bucket.try_accept() and not bucket.try_accept()


def test_never_and_bad_arguments():
    assert not NeverRateLimiter().try_accept() and NeverRateLimiter().qps() == 0.0
    with pytest.raises(ValueError):
        TokenBucketRateLimiter(0, 1, lambda: 0.0)
