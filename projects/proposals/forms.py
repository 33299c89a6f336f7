from django import forms

from projects.detections import MAX_CONCURRENCY
from projects.models import ModelVersion


class ModelVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        status = f", {obj.status}" if obj.status else ""
        return f"{obj.name} ({obj.get_kind_display()}{status})"


class StartProposalRunForm(forms.Form):
    model_version = ModelVersionChoiceField(queryset=ModelVersion.objects.none(), empty_label=None)
    concurrency = forms.IntegerField(
        min_value=1, max_value=MAX_CONCURRENCY, initial=4,
        help_text="Parallel model calls; keep it within what the model's inference units serve.",
        widget=forms.NumberInput(attrs={"style": "width: 5em"}),
    )

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        # Imported predictions have nothing to run.
        self.fields["model_version"].queryset = project.model_versions.exclude(
            kind=ModelVersion.Kind.IMPORTED
        ).order_by("-created_at", "-id")
