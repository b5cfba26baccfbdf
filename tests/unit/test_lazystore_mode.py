"""Which lazyfs mode a run's stores mount with (harness.backends.lazystore)."""

from __future__ import annotations

import pytest

from harness.backends.lazystore import LazyStores
from harness.runstate import RunState


@pytest.mark.parametrize(
    ("writeback_after", "sync_interval", "kernel_cache"),
    [(None, "default", True), (None, "1s", True), (None, "always", False),
     (5.0, "default", False), (5.0, "always", False)],
)  # fmt: skip
def test_exact_mode_under_always_and_with_the_writeback_model(
    writeback_after: float | None, sync_interval: str, kernel_cache: bool
) -> None:
    stores = LazyStores(RunState(tag="nc0000abcd"), writeback_after, None, sync_interval)
    assert stores.kernel_cache is kernel_cache
    assert ("--single-thread" in stores.extra_args) is (sync_interval == "always")
