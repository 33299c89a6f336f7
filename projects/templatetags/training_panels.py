"""The local-model training section of the iteration page, rendered in place."""

from django import template

from projects.training_views import panel_context

register = template.Library()


@register.inclusion_tag("projects/training_panel.html", takes_context=True)
def training_panel(context):
    # The iteration page already knows the user's role: no second query for it.
    panel = panel_context(context["request"], context["iteration"], is_owner=context.get("is_owner"))
    return {**panel, "csrf_token": context.get("csrf_token")}
