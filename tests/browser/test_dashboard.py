"""The owner's dashboard of the demo project after a local v2 training: both models' F1 and the
charts, as a browser shows them."""

import os
import re

import pytest
from playwright.sync_api import expect

from projects.dashboard import metrics
from projects.demo import data as demodata
from projects.demo import workflow as demo_workflow
from projects.local_model.learning import train_local_model
from projects.models import Membership
from reviewer import simulation
from reviewer.models import Review
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)
SIZES = {"v1": 4, "v2": 2, "test": 4}  # the demo in small, as tests/projects/local_model builds it


@pytest.fixture
def demo(tmp_path, owner):
    """The demo loop on the reduced demo: local v1 from v1, its proposals on v2 reviewed by a
    simulated reviewer (12 s an image), local v2 from v1 + v2; both measured on test."""
    folder = tmp_path / "demo"
    sets = demodata.generate_demo_data(folder=folder, sizes=SIZES)
    project = demo_workflow.ensure_project(slug="logos", name="Logos")
    Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    v1, v2, test = (demo_workflow.ensure_iteration(project, name) for name in ("v1", "v2", "test"))
    for iteration, labeled in ((v1, True), (v2, False), (test, True)):
        demo_workflow.load_set(iteration=iteration, folder=folder, set_name=iteration.name, labeled=labeled)
    model_v1 = train_local_model(project=project, iterations=[v1], name="v1", held_out=test)
    demo_workflow.propose(iteration=v2, model_version=model_v1)
    reviewer = make_user("rita")
    Membership.objects.create(project=project, user=reviewer, role=Membership.Role.REVIEWER)
    simulation.simulate_reviews(iteration=v2, truth={image.name: image.objects for image in sets["v2"]},
                                reviewers=[reviewer])
    Review.objects.update(elapsed_ms=12_000)
    model_v2 = train_local_model(project=project, iterations=[v1, v2], name="v2", held_out=test)
    v2.refresh_from_db()
    return {"v1": model_v1, "v2": model_v2, "measured": metrics.for_iteration(v2)["overall"]["f1"]}


def test_dashboard_shows_both_models_f1_and_the_charts(login_page, live_server, owner, demo):
    page = login_page(owner)
    page.goto(f"{live_server.url}/p/logos/")

    chain = re.compile(r"v1\s*→\s*model v1\s*→\s*v2\s*→\s*model v2")
    expect(page.get_by_test_id("lineage")).to_have_text(chain)
    v2_row = page.locator('tr[data-iteration="v2"]')
    expect(v2_row.locator("td.f1-measured")).to_have_text(f"{demo['measured']:.3f}")
    expect(v2_row.locator("td.f1-reported")).to_contain_text(f"{demo['v1'].f1:.3f}")
    expect(v2_row).to_contain_text(f"model v2 (F1 {demo['v2'].f1:.3f})")
    expect(page.locator('tr[data-iteration="v1"]')).to_contain_text(f"model v1 (F1 {demo['v1'].f1:.3f})")

    charts = page.locator("figure.chart svg")
    expect(charts).to_have_count(5)
    for name in ("f1-versions", "pr-curve", "per-label", "throughput", "verdicts"):
        expect(page.locator(f'figure[data-chart="{name}"] svg')).to_be_visible()
    f1_bars = page.locator('figure[data-chart="f1-versions"] rect title')
    expect(f1_bars).to_contain_text([
        f"v1: measured by Loupe on reviewed images {demo['measured']:.2f}",
        f"v1: reported by its training {demo['v1'].f1:.2f}",
        f"v2: reported by its training {demo['v2'].f1:.2f}",
    ])
    expect(page.locator('figure[data-chart="pr-curve"] circle.threshold')).not_to_have_count(0)
    expect(page.locator('figure[data-chart="throughput"] rect')).to_have_count(1)
    if os.environ.get("LOUPE_SCREENSHOT"):
        page.screenshot(path=os.environ["LOUPE_SCREENSHOT"], full_page=True)
