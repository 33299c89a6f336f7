import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_progress_cache():
    """Progress figures are cached per iteration id; ids repeat across tests, the figures must not."""
    cache.clear()
    yield
    cache.clear()
