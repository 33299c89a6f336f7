from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from projects.access import get_image_for_user, get_iteration_for_user, role_in
from projects.models import Image, Membership
from reviewer import queue
from reviewer.editor.forms import (
    PayloadError,
    SubmitReviewForm,
    parse_json_body,
)
from reviewer.editor.payload import image_payload, is_editable, labels_payload
from reviewer.editor.reviews import LeaseLost, ReviewValidationError, StaleReview, submit_review
from reviewer.models import Review

# Skipped images are kept out of this reviewer's next claims for a while, not forever.
SKIP_MEMORY = 50
SAVED_BY_YOU = ("You saved this image in another tab or window since this one opened it, so this tab's "
                "changes were not saved. Reload to see the saved boxes.")
FORBIDDEN_CORRECTION = "Only the project's owners can change an image someone else reviewed."


def _skipped_key(iteration_id):
    return f"reviewer:skipped:{iteration_id}"


def _skipped(request, iteration_id):
    return request.session.get(_skipped_key(iteration_id), [])


def _remember_skip(request, image):
    key = _skipped_key(image.iteration_id)
    request.session[key] = ([image.pk] + [i for i in _skipped(request, image.iteration_id) if i != image.pk])[
        :SKIP_MEMORY]


MAX_OPEN_ELSEWHERE = 20
MAX_ID = 2**63 - 1  # a larger integer in a query would be an error on PostgreSQL, not "no such image"


def _image_ids(values):
    return [v for v in values
            if isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_ID][:MAX_OPEN_ELSEWHERE]


def _claim_following(request, iteration, now, open_elsewhere=()):
    exclude = _skipped(request, iteration.pk) + _image_ids(open_elsewhere)
    return queue.claim_next(iteration=iteration, user=request.user, now=now, exclude_ids=exclude)


def _next_response(request, iteration, image, now, open_elsewhere=()):
    """JSON for the image that follows: the editor swaps it in without loading a page."""
    if image is None:
        url = reverse("reviewer:next", args=[iteration.project.slug, iteration.name])
        if open_elsewhere:
            # The queue page claims too: it must not hand this tab an image another tab shows.
            url += "?" + urlencode({"open_elsewhere": ",".join(map(str, open_elsewhere))})
        return {"next": None, "next_url": url}
    payload = image_payload(image=image, user=request.user, now=now, editable=True)
    return {"next": payload, "next_url": payload["page_url"]}


def _ids_in(text):
    """Image ids from "12,15" (a query parameter); anything else in it is ignored."""
    # ASCII digits only ("²".isdigit() is true), and short enough for a bigint primary key.
    return [int(part) for part in text.split(",")
            if part.isascii() and part.isdigit() and len(part) <= 18][:MAX_OPEN_ELSEWHERE]


def _body(request):
    """request.body, or PayloadError when it is larger than Django accepts (the editor reads JSON)."""
    try:
        return request.body
    except RequestDataTooBig as error:
        raise PayloadError("body", f"The request body is larger than Loupe accepts "
                                   f"({settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes); send fewer or "
                                   "smaller boxes.") from error


def _error(status, code, message, field=None):
    return JsonResponse({"code": code, "error": message, "field": field}, status=status)


def _is_prefetch(request):
    # Sec-Purpose is the standard header (Firefox; Chromium's speculation rules send "prefetch" or
    # "prefetch;prerender"); Chromium's <link rel=prefetch> still sends the legacy Purpose header.
    purposes = (request.headers.get("Sec-Purpose", ""), request.headers.get("Purpose", ""),
                request.headers.get("X-Moz", ""))
    return any(purpose.strip().lower().startswith("prefetch") for purpose in purposes)


@require_GET
@never_cache
def next_image(request, slug, name):
    """Lease the reviewer's next image and go to it.

    A GET that claims is tolerated because this is what the iteration page's Review link opens, but a
    browser prefetch or prerender of that link must not lease an image nobody looks at: those are
    refused with a 503, which makes the browser drop the prefetch and ask again when the link is
    followed, and no-store keeps the redirect out of every cache.
    """
    iteration = get_iteration_for_user(request.user, slug, name)
    if _is_prefetch(request):
        return HttpResponse("Loupe does not prefetch the review queue: claiming an image leases it.",
                            status=503, content_type="text/plain")
    open_elsewhere = _ids_in(request.GET.get("open_elsewhere", ""))
    image = queue.claim_next(iteration=iteration, user=request.user,
                             exclude_ids=_skipped(request, iteration.pk) + open_elsewhere)
    if image is None and _skipped(request, iteration.pk):
        # Only skipped images are left: offer them again rather than calling the queue empty.
        request.session.pop(_skipped_key(iteration.pk))
        image = queue.claim_next(iteration=iteration, user=request.user, exclude_ids=open_elsewhere)
    if image is not None:
        return redirect("reviewer:image", image_id=image.pk)
    context = {"iteration": iteration, "project": iteration.project,
               "progress": queue.progress(iteration=iteration)}
    return render(request, "reviewer/queue_empty.html", context)


def _get_page_image_for_user(user, image_id):
    """get_image_for_user, with what the page shows (the iteration's model for the label thresholds,
    the lease holder's and reviewer's names) in the same query."""
    return get_image_for_user(
        user, image_id, related=("iteration__shown_model", "leased_by", "reviewed_by")
    )


@require_GET
def image_page(request, image_id):
    image = _get_page_image_for_user(request.user, image_id)
    iteration, now = image.iteration, timezone.now()
    editable = is_editable(image, request.user, now)
    context = {
        "image": image,
        "iteration": iteration,
        "project": iteration.project,
        "editable": editable,
        "can_reopen": _may_reopen(request.user, image),
        "held_by_other": image.leased_by if not editable and not image.lease_is_free_at(now) else None,
        "payload": image_payload(image=image, user=request.user, now=now, editable=editable),
        "labels": labels_payload(iteration),
        "lease_seconds": queue.lease_seconds(),
    }
    return render(request, "reviewer/review.html", context)


@require_POST
def submit(request, image_id):
    image = get_image_for_user(request.user, image_id)
    if not _may_reopen(request.user, image):
        return _error(403, "forbidden", FORBIDDEN_CORRECTION)
    try:
        data = parse_json_body(_body(request))
    except PayloadError as error:
        return _error(400, "invalid", error.message, error.field)
    form = SubmitReviewForm(data)
    if not form.is_valid():
        field, message = form.first_error()
        return _error(400, "invalid", message, field)
    fields, now = form.cleaned_data, timezone.now()
    was_pending = image.status == Image.Status.PENDING
    try:
        # One commit for "save this, give me the next": on SQLite a commit is an fsync.
        with transaction.atomic():
            review = submit_review(
                image=image, reviewer=request.user, version=fields["version"], boxes=fields["boxes"],
                no_objects=fields["no_objects"], elapsed_ms=fields["elapsed_ms"] or 0,
                started_at=fields["started_at"], now=now, hidden_proposal_ids=fields["hidden"],
                model_version_id=fields["model_version"],
            )
            # A correction (a re-opened reviewed image, by its reviewer or an owner) goes back to the
            # image the user already holds, if any, but never leases a new one: an owner fixing one
            # image must not take a pending one away from the reviewers for the lease's length.
            open_elsewhere = _image_ids(fields["open_elsewhere"])
            following = (
                _claim_following(request, image.iteration, now, open_elsewhere) if was_pending
                else queue.held_image(iteration=image.iteration, user=request.user, now=now,
                                      exclude_ids=open_elsewhere)
            )
    except ReviewValidationError as error:
        return _error(400, "invalid", error.message, error.field)
    except StaleReview as error:
        if Image.objects.filter(pk=image.pk, reviewed_by=request.user).exists():
            return _error(409, "stale", SAVED_BY_YOU)
        return _error(409, "stale", error.message)
    except LeaseLost as error:
        return _error(409, "lease_lost", error.message)
    body = {"saved": {"image": image.pk, "version": image.version, "review": review.pk}}
    body.update(_next_response(request, image.iteration, following, now, open_elsewhere))
    if following is None and not was_pending:
        # Show the corrected image (read-only now) rather than the queue, whose page claims.
        body["next_url"] = reverse("reviewer:image", args=[image.pk])
    return JsonResponse(body)


@require_POST
def skip(request, image_id):
    """Give the image back and get the next one; or, for an image this reviewer has open in another
    tab (the editor sends {"open_elsewhere": [...]}), keep it for that tab and get another."""
    image = get_image_for_user(request.user, image_id)
    now = timezone.now()
    open_elsewhere = _open_elsewhere(request)
    with transaction.atomic():
        if image.pk not in open_elsewhere:
            _remember_skip(request, image)
            queue.release_lease(image=image, user=request.user)
        following = _claim_following(request, image.iteration, now, open_elsewhere)
    body = _next_response(request, image.iteration, following, now, open_elsewhere)
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(body)
    return redirect(body["next_url"])


def _open_elsewhere(request):
    """The skip body's image ids open in other tabs; a plain form POST (no JSON) sends none."""
    if request.content_type != "application/json":
        return []
    try:
        ids = parse_json_body(_body(request)).get("open_elsewhere")
    except PayloadError:
        return []
    return _image_ids(ids) if isinstance(ids, list) else []


@require_POST
def renew_lease(request, image_id):
    image = get_image_for_user(request.user, image_id)
    expires = queue.renew_lease(image=image, user=request.user)
    if expires is None:
        return _error(409, "lease_lost", LeaseLost.message)
    return JsonResponse({"lease_expires_at": expires.isoformat()})


@require_POST
def reopen(request, image_id):
    image = get_image_for_user(request.user, image_id)
    if not _may_reopen(request.user, image):
        raise PermissionDenied(FORBIDDEN_CORRECTION)
    if not queue.claim_image(image=image, user=request.user):
        messages.error(request, "Another reviewer is working on this image; try again when they are done.")
    return redirect("reviewer:image", image_id=image.pk)


@require_POST
def back(request, slug, name):
    iteration = get_iteration_for_user(request.user, slug, name)
    reviews = Review.objects.filter(reviewer=request.user, image__iteration=iteration)
    # The page sends the image it shows: from an image this reviewer saved, Back goes on to the one
    # saved before it, so pressing Back again walks further back instead of reopening the same image.
    current = _ids_in(request.POST.get("from", ""))[:1]
    shown = reviews.filter(image_id__in=current).order_by("-submitted_at", "-id").first()
    if shown is not None:
        reviews = reviews.filter(
            Q(submitted_at__lt=shown.submitted_at) | Q(submitted_at=shown.submitted_at, id__lt=shown.id)
        ).exclude(image_id=shown.image_id)
        # Walking on from a re-opened image gives it back: it must not stay held by nobody's page.
        queue.release_reviewed_lease(image_id=shown.image_id, user=request.user)
    last = reviews.select_related("image").order_by("-submitted_at", "-id").first()
    if last is None and shown is not None:
        messages.info(request, "This is the first image you reviewed in this iteration.")
        queue.claim_image(image=shown.image, user=request.user)
        return redirect("reviewer:image", image_id=shown.image_id)
    if last is None:
        messages.info(request, "You have not reviewed any image in this iteration yet.")
        return redirect("reviewer:next", slug=slug, name=name)
    if not queue.claim_image(image=last.image, user=request.user):
        messages.error(request, "Another reviewer is working on your last image; it opens read-only.")
    return redirect("reviewer:image", image_id=last.image_id)


def _may_reopen(user, image):
    if image.status == Image.Status.PENDING or image.reviewed_by_id == user.pk:
        return True
    return role_in(user, image.iteration.project) == Membership.Role.OWNER
