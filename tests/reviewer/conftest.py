import pytest

from reviewer import queue


@pytest.fixture(autouse=True)
def fresh_progress_figures():
    """Progress figures are kept per iteration id; ids repeat across tests, the figures must not."""
    queue.PROGRESS_FIGURES.clear()
    yield
    queue.PROGRESS_FIGURES.clear()
