from django import forms

from projects.groundtruth import contract
from projects.groundtruth.dispatch import DispatchRequest


class DispatchForm(forms.Form):
    workteam_arn = forms.CharField(
        max_length=2048,
        label="Work team ARN",
        widget=forms.TextInput(
            attrs={"placeholder": "arn:aws:sagemaker:REGION:ACCOUNT:workteam/private-crowd/NAME", "size": 60}
        ),
    )
    role_arn = forms.CharField(
        max_length=2048,
        label="Role ARN",
        help_text="The IAM role Ground Truth assumes to read the images and write its results.",
        widget=forms.TextInput(attrs={"placeholder": "arn:aws:iam::ACCOUNT:role/NAME", "size": 50}),
    )
    max_labels_per_job = forms.IntegerField(
        min_value=1,
        max_value=contract.MAX_LABELS_PER_JOB,
        initial=contract.MAX_LABELS_PER_JOB,
        label="Labels per job",
        widget=forms.NumberInput(attrs={"style": "width: 4em"}),
    )
    dry_run = forms.BooleanField(required=False, label="Dry run (show the job, send nothing)")

    def dispatch_request(self, iteration, user):
        data = self.cleaned_data
        return DispatchRequest(
            iteration=iteration,
            workteam_arn=data["workteam_arn"].strip(),
            role_arn=data["role_arn"].strip(),
            max_labels_per_job=data["max_labels_per_job"],
            dry_run=data["dry_run"],
            user=user,
        )
