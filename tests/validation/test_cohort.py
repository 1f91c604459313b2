from hypothesis import given
from hypothesis import strategies as st

from fundmodel.validation import cohort_bucket, in_canary_cohort

client_ids = st.text(min_size=1, max_size=40)
percents = st.floats(min_value=0, max_value=100)


@given(client_ids, st.text(max_size=20))
def test_bucket_is_sticky_and_in_range(client_id: str, salt: str) -> None:
    bucket = cohort_bucket(client_id, salt=salt)
    assert 0.0 <= bucket < 100.0
    assert cohort_bucket(client_id, salt=salt) == bucket


@given(client_ids, percents, percents)
def test_raising_the_percentage_only_adds_clients(client_id: str, low: float, high: float) -> None:
    low, high = sorted((low, high))
    if in_canary_cohort(client_id, salt="s", percent=low):
        assert in_canary_cohort(client_id, salt="s", percent=high)


@given(client_ids)
def test_zero_includes_nobody_and_hundred_everybody(client_id: str) -> None:
    assert not in_canary_cohort(client_id, salt="s", percent=0.0)
    assert in_canary_cohort(client_id, salt="s", percent=100.0)


def test_ten_percent_of_ten_thousand_clients_land_in_the_cohort() -> None:
    members = sum(in_canary_cohort(f"client-{i}", salt="rollout-1", percent=10.0) for i in range(10_000))
    assert 850 <= members <= 1150  # 10 % ± 1.5 %


def test_the_salt_reshuffles_the_cohort() -> None:
    first = {i for i in range(2000) if in_canary_cohort(f"c{i}", salt="a", percent=10.0)}
    second = {i for i in range(2000) if in_canary_cohort(f"c{i}", salt="b", percent=10.0)}
    assert first != second
    assert len(first & second) < len(first) / 2
