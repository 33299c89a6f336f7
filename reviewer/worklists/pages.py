"""The owner's image list a page at a time, at the same cost on page 1 and page 2,000.

Pages are cut by keyset, not OFFSET: a page is the next (or previous) IMAGES_PER_PAGE images after
the (position, id) of the last one shown, read in order from an index that leads with the iteration
(image_by_position, or image_queue_file when the status is filtered). Box counts are then fetched for
those images only. Nothing here counts the iteration: totals come from the maintained counters.
"""

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q

from projects.models import Image
from reviewer.models import Box

IMAGES_PER_PAGE = 50


@dataclass
class ImagePage:
    images: list
    previous: str | None  # cursor for the "previous" link: the first image shown, when any precede it
    next: str | None  # cursor for the "next" link: the last image shown, when any follow it

    @property
    def has_other_pages(self):
        return bool(self.previous or self.next)


def cursor_of(image):
    return f"{image.position}.{image.pk}"


def filtered_images(iteration, filters):
    """The iteration's images that pass the filters (status, label, reviewer, changed), unordered."""
    images = Image.objects.filter(iteration=iteration).select_related("reviewed_by")
    if filters.get("status"):
        images = images.filter(status=filters["status"])
    if filters.get("label"):
        images = images.filter(Exists(Box.objects.filter(image=OuterRef("pk"), label=filters["label"])))
    if filters.get("reviewer"):
        images = images.filter(reviewed_by=filters["reviewer"])
    if filters.get("changed"):
        images = images.filter(changed=True)
    return images


def page_of(images, *, after=None, before=None, offset=0, size=IMAGES_PER_PAGE):
    """The page of images (a filtered_images() queryset) after the (position, id) cursor `after`, or
    before `before`, or at `offset` from the start (old numbered links; the caller bounds it).
    Each image gets box_count. One query for the page and one for its box counts."""
    if before is not None:
        rows = list(images.filter(_beyond(before, "lt")).order_by("-position", "-id")[:size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        page = ImagePage(rows, previous=cursor_of(rows[0]) if more_before else None,
                         next=cursor_of(rows[-1]) if rows else None)
    else:
        if after is not None:
            images = images.filter(_beyond(after, "gt"))
        rows = list(images.order_by("position", "id")[offset:offset + size + 1])
        more_after = len(rows) > size
        rows = rows[:size]
        page = ImagePage(rows, previous=cursor_of(rows[0]) if rows and (after or offset) else None,
                         next=cursor_of(rows[-1]) if more_after else None)
    _add_box_counts(page.images)
    return page


def _beyond(cursor, direction):
    """Images after (gt) or before (lt) the (position, id) cursor. The position bound on its own is
    redundant but is what lets the index scan start at the cursor instead of filtering its way there."""
    position, pk = cursor
    return Q(**{f"position__{direction}e": position}) & (
        Q(**{f"position__{direction}": position}) | Q(position=position, **{f"id__{direction}": pk}))


def _add_box_counts(images):
    if not images:
        return
    counts = dict(Box.objects.filter(image_id__in=[image.pk for image in images]).order_by()
                  .values_list("image_id").annotate(count=Count("id")))
    for image in images:
        image.box_count = counts.get(image.pk, 0)
