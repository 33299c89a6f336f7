"""The review queue: who holds which image (a lease), and which image a reviewer gets next.

Claiming walks one of the image_queue_* indexes in the project's review order and stops at the
first pending image whose lease is free or expired. Leased rows are skipped inside the index scan
and there are at most as many of them as active reviewers, so a claim costs the same few queries
at 10 or 10 million images.
"""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from projects.models import Image, Project, counts_of, lease_is_free

ORDERINGS = {
    Project.ReviewOrder.HARDEST: ("-priority", "id"),
    Project.ReviewOrder.RANDOM: ("random_key", "id"),
    Project.ReviewOrder.FILE: ("position", "id"),
}
# A lost race on SQLite means another reviewer just took the image we picked; the next pick skips
# it because it is now leased. Only a stampede of reviewers could exhaust these.
CLAIM_ATTEMPTS = 8


def lease_expiry(now):
    return now + timedelta(seconds=settings.LOUPE_LEASE_SECONDS)


def lease_seconds():
    return settings.LOUPE_LEASE_SECONDS


def holds_lease(image, user, now):
    return image.leased_by_id == user.pk and not image.lease_is_free_at(now)


def claimable(iteration, now, exclude_ids=()):
    order = ORDERINGS.get(iteration.project.review_order, ORDERINGS[Project.ReviewOrder.HARDEST])
    images = Image.objects.filter(iteration=iteration, status=Image.Status.PENDING).filter(lease_is_free(now))
    if exclude_ids:
        images = images.exclude(pk__in=list(exclude_ids))
    return images.order_by(*order)


def claim_next(*, iteration, user, now=None, exclude_ids=()):
    """The image this reviewer should look at now, leased to them; None when nothing is left.

    exclude_ids are images the reviewer just skipped: not offered to them again for now.
    """
    now = now or timezone.now()
    own = held_image(iteration=iteration, user=user, now=now, exclude_ids=exclude_ids)
    if own is not None:
        return own
    for _ in range(CLAIM_ATTEMPTS):
        image, won = _try_claim(iteration, user, now, exclude_ids)
        if image is None:
            return None
        if won:
            return image
    return None


def held_image(*, iteration, user, now=None, exclude_ids=()):
    """The pending image of the iteration this user already holds, if any; leases nothing.

    exclude_ids: images the user holds but has open in another tab, which must not come back here.
    """
    now = now or timezone.now()
    own = Image.objects.filter(
        leased_by=user, lease_expires_at__gt=now, iteration=iteration, status=Image.Status.PENDING
    )
    if exclude_ids:
        own = own.exclude(pk__in=list(exclude_ids))
    own = own.order_by("lease_expires_at", "id").first()
    if own is not None:
        own.iteration = iteration
    return own


def _try_claim(iteration, user, now, exclude_ids):
    expires = lease_expiry(now)
    # Inside the caller's transaction (a save that hands out the next image) no savepoint: a failed
    # claim fails the save with it, and the two statements a savepoint costs are spared.
    with transaction.atomic(savepoint=False):
        candidates = claimable(iteration, now, exclude_ids)
        if connection.vendor == "postgresql":
            # Another claimer's locked candidate is skipped instead of waited for.
            candidates = candidates.select_for_update(skip_locked=True)
        image = candidates.first()
        if image is None:
            return None, False
        # On SQLite there are no row locks: the lease condition in the UPDATE is what makes the
        # claim exclusive, and losing it means "pick again".
        won = (
            Image.objects.filter(pk=image.pk, status=Image.Status.PENDING)
            .filter(lease_is_free(now))
            .update(leased_by=user, lease_expires_at=expires)
        )
    image.leased_by, image.lease_expires_at, image.iteration = user, expires, iteration
    return image, bool(won)


def claim_image(*, image, user, now=None):
    """Lease one given image (reopening it for correction); False when someone else holds it."""
    now = now or timezone.now()
    expires = lease_expiry(now)
    won = (
        Image.objects.filter(pk=image.pk)
        .filter(lease_is_free(now) | Q(leased_by=user))
        .update(leased_by=user, lease_expires_at=expires)
    )
    if won:
        image.leased_by, image.lease_expires_at = user, expires
    return bool(won)


def renew_lease(*, image, user, now=None):
    """Extend a lease the reviewer holds; None when it is no longer theirs.

    Only the holder renews (also a lease that just expired while nobody took the image): a renewal
    never claims an image, so a heartbeat cannot lease one that was saved or released meanwhile.
    """
    now = now or timezone.now()
    expires = lease_expiry(now)
    if not Image.objects.filter(pk=image.pk, leased_by=user).update(lease_expires_at=expires):
        return None
    image.leased_by, image.lease_expires_at = user, expires
    return expires


def release_lease(*, image, user):
    """Give the image back to the queue (skip). Only the holder's lease is released."""
    return bool(
        Image.objects.filter(pk=image.pk, leased_by=user).update(leased_by=None, lease_expires_at=None)
    )


def release_reviewed_lease(*, image_id, user):
    """Release the user's hold on a reviewed image they re-opened (pending images keep theirs)."""
    return bool(
        Image.objects.filter(pk=image_id, leased_by=user, status=Image.Status.REVIEWED)
        .update(leased_by=None, lease_expires_at=None)
    )


def release_all_leases(*, user):
    """Everything the user holds goes back to the queue (on logout)."""
    return Image.objects.filter(leased_by=user).update(leased_by=None, lease_expires_at=None)


def peek_next(*, iteration, user, exclude_id, now=None):
    """The image a claim would most likely give next, without leasing it: a prefetch hint."""
    now = now or timezone.now()
    return claimable(iteration, now, [exclude_id]).only("id").first()


def progress(*, iteration):
    """{"left", "total", "iteration"} for "37 of 120 left in v2".

    Read from the maintained counters (projects.ImageCount): one indexed query at any iteration size,
    always current, so there is nothing to cache.
    """
    counts = counts_of(iteration)
    return {"left": counts["pending"], "total": counts["total"], "iteration": iteration.name}


def on_user_logged_out(sender, request, user, **kwargs):
    if user is not None:
        release_all_leases(user=user)
