from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import RegexValidator

from projects.models import Image, LabelClass, Project

cursor_validator = RegexValidator(r"^\d{1,10}\.\d{1,19}$", "Use the Next and Previous links of the list.")


class QueueOrderForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["review_order"]
        labels = {"review_order": "Queue order"}


class CursorField(forms.CharField):
    """A page boundary of the image list, "<position>.<id>" of an image; cleaned to (position, id)."""

    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=40, validators=[cursor_validator], **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        position, pk = value.split(".")
        return int(position), int(pk)


class ImageFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Image.Status.choices])
    label = forms.ModelChoiceField(required=False, queryset=LabelClass.objects.none(),
                                   empty_label="Any label")
    reviewer = forms.ModelChoiceField(required=False, queryset=get_user_model().objects.none(),
                                      empty_label="Anyone")
    changed = forms.BooleanField(required=False, label="Changed by reviewer")
    after = CursorField()
    before = CursorField()
    # Numbered pages are gone (the list pages by cursor); old links still open their page.
    page = forms.IntegerField(required=False, min_value=1)

    PAGING = ("after", "before", "page")

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = project.labels.order_by("order", "name")
        self.fields["reviewer"].queryset = get_user_model().objects.filter(
            memberships__project=project).order_by("username")

    def counts_every_match(self):
        """Whether the maintained counters hold the number of matching images: no filter but status."""
        return not any(self.cleaned_data.get(name) for name in ("label", "reviewer", "changed"))
