"""The proposals section of the iteration page and the model controls of the project page,
rendered in place so the pages need no second request."""

from django import template

from projects.proposal_views import model_controls_context, panel_context

register = template.Library()


@register.inclusion_tag("projects/proposal_panel.html", takes_context=True)
def proposal_panel(context):
    # The iteration page already knows the user's role: no second query for it.
    panel = panel_context(context["request"], context["iteration"], is_owner=context.get("is_owner"))
    return {**panel, "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("projects/_model_controls.html", takes_context=True)
def model_controls(context, model):
    return {
        **model_controls_context(model, project=context["project"], is_owner=context.get("is_owner", False)),
        "csrf_token": context.get("csrf_token"),
    }
