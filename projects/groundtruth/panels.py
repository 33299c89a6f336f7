"""The Ground Truth section of the iteration page: its query and its fragment."""

import json

from django.template.loader import render_to_string

from projects.access import role_in
from projects.groundtruth.forms import DispatchForm
from projects.models import Membership

PANEL_TEMPLATE = "projects/groundtruth_panel.html"
SHOWN_JOBS = 10


def job_rows(iteration):
    rows = []
    for job in iteration.groundtruth_jobs.all()[:SHOWN_JOBS]:
        counters = job.counters or {}
        total = job.items.count()
        rows.append({
            "job": job,
            "total": total,
            "labeled": counters.get("TotalLabeled", 0),
            "failed_objects": counters.get("FailedNonRetryableError", 0),
            "report": job.report or {},
            "can_stop": bool(job.arn) and job.status in ("Initializing", "InProgress"),
        })
    return rows


def panel_context(request, iteration, *, form=None, error="", plan=None, is_owner=None):
    if is_owner is None:
        is_owner = role_in(request.user, iteration.project) == Membership.Role.OWNER
    return {
        "project": iteration.project,
        "iteration": iteration,
        "is_owner": is_owner,
        "form": (form or DispatchForm()) if is_owner else None,
        "error": error,
        "plan": plan,
        "plan_requests": [json.dumps(job.request, indent=2) for job in plan.jobs] if plan else [],
        "jobs": job_rows(iteration),
    }


def render_panel(request, iteration, *, is_owner):
    return render_to_string(PANEL_TEMPLATE, panel_context(request, iteration, is_owner=is_owner), request)
