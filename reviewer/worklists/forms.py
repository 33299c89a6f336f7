from django import forms
from django.contrib.auth import get_user_model

from projects.models import Image, LabelClass, Project


class QueueOrderForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["review_order"]
        labels = {"review_order": "Queue order"}


class ImageFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Image.Status.choices])
    label = forms.ModelChoiceField(required=False, queryset=LabelClass.objects.none(),
                                   empty_label="Any label")
    reviewer = forms.ModelChoiceField(required=False, queryset=get_user_model().objects.none(),
                                      empty_label="Anyone")
    changed = forms.BooleanField(required=False, label="Changed by reviewer")
    page = forms.IntegerField(required=False, min_value=1)

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = project.labels.order_by("order", "name")
        self.fields["reviewer"].queryset = get_user_model().objects.filter(
            memberships__project=project).order_by("username")
