from django import forms

from projects.local_model.forms import TrainLocalModelForm
from projects.local_model.training import name_taken as local_name_taken
from projects.training.service import LOCAL, REKOGNITION, TrainingRequest, name_taken

BACKEND_CHOICES = [
    (LOCAL, "Loupe's offline detector (free, no AWS account)"),
    (REKOGNITION, "Rekognition Custom Labels (training time is billed by AWS)"),
]


class TrainForm(TrainLocalModelForm):
    """The one training form: the local fields plus the backend and Rekognition's test split."""

    backend = forms.ChoiceField(choices=BACKEND_CHOICES, initial=LOCAL, required=False,
                                widget=forms.RadioSelect, label="Train on")
    test_fraction = forms.FloatField(
        required=False, min_value=0.01, max_value=0.99, label="or split off",
        widget=forms.NumberInput(attrs={"step": "0.05", "style": "width: 5em", "placeholder": "0.2"}),
        help_text="Rekognition: a share of this iteration's images to test on instead of a test iteration.",
    )
    replace_datasets = forms.BooleanField(
        required=False, label="Replace the Rekognition project's datasets",
        help_text="Rekognition keeps one TRAIN and one TEST dataset per project: delete the old ones "
                  "(models trained from them are kept).",
    )

    field_order = ["backend", "name", "include_earlier", "held_out", "test_fraction", "replace_datasets"]

    def __init__(self, *args, iteration, **kwargs):
        super().__init__(*args, iteration=iteration, **kwargs)
        self.fields["held_out"].label = "Test on"
        project = iteration.project
        if not (project.rekognition_project_arn and project.output_location.strip()):
            self.fields["backend"].help_text = (
                "To train on Rekognition, set the project's Rekognition project ARN and output "
                "location in its settings first.")
        self.fields["include_earlier"].help_text = (
            "Local only: use the reviewed boxes of the iterations created before this one too.")

    def clean_name(self):
        # Each backend's own rule: a failed attempt that never reached Rekognition frees its name.
        name = self.cleaned_data["name"].strip()
        rule = name_taken if self.cleaned_data.get("backend") == REKOGNITION else local_name_taken
        if rule(project=self.iteration.project, name=name):
            raise forms.ValidationError(f"A model version named {name!r} already exists.")
        return name

    def training_request(self):
        data = self.cleaned_data
        return TrainingRequest(
            iteration=self.iteration, version_name=data["name"], backend=data.get("backend") or LOCAL,
            test_from=data.get("held_out"), test_fraction=data.get("test_fraction"),
            include_earlier=bool(data.get("include_earlier")),
            replace_datasets=bool(data.get("replace_datasets")),
        )
