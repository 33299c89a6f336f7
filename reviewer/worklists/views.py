"""Lists of work: a reviewer's own day, and the owner's filtered list of an iteration's images."""

import statistics
from datetime import datetime, time

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from projects.access import get_iteration_for_user
from projects.models import counts_of
from reviewer.models import Review
from reviewer.worklists.forms import ImageFilterForm, QueueOrderForm
from reviewer.worklists.pages import IMAGES_PER_PAGE, filtered_images, page_of

# Old numbered links (?page=N, from before the list paged by cursor) still open their page up to
# this one: an OFFSET reads every row it skips, so a bound keeps their cost flat too.
MAX_PAGE_NUMBER = 20
# Stands for an image id in a reversed URL: a number no path of these URLs holds otherwise.
ID_SLOT = 987654321


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
    valid = form.is_bound and form.is_valid()
    filters = form.cleaned_data if valid else {}
    query = request.GET.copy()
    for field in ImageFilterForm.PAGING:
        query.pop(field, None)
    page_number = filters.get("page") or 1
    if page_number > MAX_PAGE_NUMBER:
        messages.info(request, "The image list now pages with Next and Previous: here is its first page.")
        return redirect(f"{request.path}?{query.urlencode()}" if query else request.path)
    images = filtered_images(iteration, filters)
    after, before = filters.get("after"), filters.get("before")
    if after or before:
        page = page_of(images, after=after, before=None if after else before)
    else:
        page = page_of(images, offset=(page_number - 1) * IMAGES_PER_PAGE)
    total = None
    if not valid or form.counts_every_match():
        counts = counts_of(iteration)
        total = counts[filters["status"]] if filters.get("status") else counts["total"]
    _add_links(page.images)
    context = {"iteration": iteration, "project": iteration.project, "form": form, "page": page,
               "total": total, "query": query.urlencode()}
    return render(request, "reviewer/image_list.html", context)


def _add_links(images):
    """Each row's page and re-open URLs from one reverse() each: three reverse() calls per row were
    the largest share of the page's time."""
    slot = str(ID_SLOT)
    page_url = reverse("reviewer:image", args=[ID_SLOT])
    reopen_url = reverse("reviewer:reopen", args=[ID_SLOT])
    for image in images:
        image.page_url = page_url.replace(slot, str(image.pk))
        image.reopen_url = reopen_url.replace(slot, str(image.pk))


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

