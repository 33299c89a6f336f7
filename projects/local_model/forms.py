from django import forms

from projects.local_model.training import name_taken
from projects.models import Iteration


class IterationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.name


class TrainLocalModelForm(forms.Form):
    name = forms.CharField(
        max_length=255, label="Model name",
        widget=forms.TextInput(attrs={"style": "width: 8em"}),
    )
    include_earlier = forms.BooleanField(
        required=False, initial=True, label="Also learn from earlier iterations",
        help_text="Use the reviewed boxes of the iterations created before this one too.",
    )
    held_out = IterationChoiceField(
        queryset=Iteration.objects.none(), required=False, label="Held out",
        empty_label="none (no F1)",
        help_text="A reviewed iteration the model never learns from: thresholds and F1 are measured on it.",
    )

    def __init__(self, *args, iteration, **kwargs):
        super().__init__(*args, **kwargs)
        self.iteration = iteration
        project = iteration.project
        others = project.iterations.exclude(pk=iteration.pk).order_by("created_at", "id")
        self.fields["held_out"].queryset = others
        if not self.is_bound:
            self.initial.setdefault("name", next_model_name(project))
            test = others.filter(name="test").first()
            if test is not None:
                self.initial.setdefault("held_out", test.pk)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if name_taken(project=self.iteration.project, name=name):
            raise forms.ValidationError(f"A model version named {name!r} already exists.")
        return name

    def training_iterations(self):
        """The iterations to learn from, oldest first, never the held-out one."""
        held_out = self.cleaned_data.get("held_out")
        chosen = [self.iteration]
        if self.cleaned_data.get("include_earlier"):
            earlier = self.iteration.project.iterations.filter(created_at__lte=self.iteration.created_at)
            chosen = [i for i in earlier.order_by("created_at", "id") if i.pk != self.iteration.pk]
            chosen.append(self.iteration)
        return [i for i in chosen if held_out is None or i.pk != held_out.pk]


def next_model_name(project):
    """v1, v2, ...: the first name of that shape the project's model versions do not use."""
    taken = set(project.model_versions.values_list("name", flat=True))
    number = 1
    while f"v{number}" in taken:
        number += 1
    return f"v{number}"
