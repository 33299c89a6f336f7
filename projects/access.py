"""Who may see and change what. Views call these helpers explicitly, first thing.

A user who is not a member of a project gets 404 for everything in it (its existence is not
revealed); a reviewer who asks for an owner's action gets 403.
"""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from projects.models import Image, Iteration, Membership, Project


def role_in(user, project):
    """'owner', 'reviewer' or None. Superusers act as owners everywhere."""
    if user.is_superuser:
        return Membership.Role.OWNER
    membership = project.memberships.filter(user=user).only("role", "project_id").first()
    return membership.role if membership else None


def get_project_for_user(user, slug, *, owner=False):
    project = get_object_or_404(Project.objects.visible_to(user).distinct(), slug=slug)
    if owner and role_in(user, project) != Membership.Role.OWNER:
        raise PermissionDenied("Only the project's owners can do this.")
    return project


def get_iteration_for_user(user, slug, name, *, owner=False):
    project = get_project_for_user(user, slug, owner=owner)
    return get_object_or_404(Iteration.objects.select_related("project"), project=project, name=name)


def get_image_for_user(user, image_id, *, related=()):
    """related: more relations a page needs, loaded in the same query."""
    # Membership is checked on the image's own project, in the same query: an id from another
    # project 404s.
    return get_object_or_404(
        Image.objects.select_related("iteration__project", *related)
        .filter(iteration__project__in=Project.objects.visible_to(user)),
        pk=image_id,
    )
