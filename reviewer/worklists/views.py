"""Lists of work: a reviewer's own day, and the owner's filtered list of an iteration's images."""

import statistics
from datetime import datetime, time

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Subquery
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from projects.access import get_iteration_for_user
from projects.models import Image
from reviewer.models import Box, Review
from reviewer.worklists.forms import ImageFilterForm, QueueOrderForm

IMAGES_PER_PAGE = 50


@require_GET
def my_work(request):
    start = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    reviews = list(
        Review.objects.filter(reviewer=request.user, submitted_at__gte=start)
        .select_related("image__iteration__project").order_by("-submitted_at", "-id")
    )
    for review in reviews:
        review.seconds = review.elapsed_ms / 1000
    seconds = [review.seconds for review in reviews]
    context = {
        # Where the reviewer was working today, newest first: one "continue reviewing" link each.
        "iterations": list({r.image.iteration_id: r.image.iteration for r in reviews}.values()),
        "reviews": reviews[:200],
        "image_count": len({review.image_id for review in reviews}),
        "review_count": len(reviews),
        "median_seconds": statistics.median(seconds) if seconds else None,
    }
    return render(request, "reviewer/my_work.html", context)


@require_GET
def image_list(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    form = ImageFilterForm(request.GET or None, project=iteration.project)
    images = _filtered_images(iteration, form.cleaned_data if form.is_valid() else {})
    page = Paginator(images, IMAGES_PER_PAGE).get_page(form.cleaned_data.get("page") if form.is_bound and
                                                       form.is_valid() else 1)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"iteration": iteration, "project": iteration.project, "form": form, "page": page,
               "query": query.urlencode()}
    return render(request, "reviewer/image_list.html", context)


def _filtered_images(iteration, filters):
    latest = Review.objects.filter(image=OuterRef("pk")).order_by("-submitted_at", "-id")
    images = (
        Image.objects.filter(iteration=iteration)
        .select_related("reviewed_by")
        .annotate(box_count=Count("boxes"), changed=Subquery(latest.values("changed")[:1]))
        .order_by("position", "id")
    )
    if filters.get("status"):
        images = images.filter(status=filters["status"])
    if filters.get("label"):
        # Exists, not a join: the box count annotated above must stay the image's whole count.
        images = images.filter(Exists(Box.objects.filter(image=OuterRef("pk"), label=filters["label"])))
    if filters.get("reviewer"):
        images = images.filter(reviewed_by=filters["reviewer"])
    if filters.get("changed"):
        images = images.filter(changed=True)
    return images


@require_POST
def queue_order(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name, owner=True)
    form = QueueOrderForm(request.POST, instance=iteration.project)
    if form.is_valid():
        form.save()
    if request.htmx:
        context = {"iteration": iteration, "project": iteration.project, "is_owner": True,
                   "order_form": form, "saved": form.is_valid()}
        return render(request, "projects/_iteration_review.html#queue-order", context)
    if form.is_valid():
        messages.success(request, f"Queue order: {iteration.project.get_review_order_display()}.")
    else:
        messages.error(request, "Choose one of the listed queue orders.")
    return redirect("projects:iteration", slug=slug, name=name)

