from django import forms
from django.conf import settings

from projects.aws import s3
from projects.aws.regions import arn_mismatch, bucket_mismatch
from projects.models import Project


def first_error(form):
    """One line for the first problem of an invalid form, named by the field's label."""
    name, errors = next(iter(form.errors.items()))
    field = form.fields.get(name)
    if field is None:
        return errors[0]
    label = field.label or name.replace("_", " ").capitalize()
    return f"{label}: {errors[0]}"


class ProjectSettingsForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = [
            "name", "region", "image_bucket", "output_location", "published_images_uri",
            "rekognition_project_arn", "review_order", "labeling_instructions",
        ]

    def _clean_s3_prefix(self, field):
        value = self.cleaned_data[field].strip()
        if not value:
            return value
        try:
            location = s3.parse_s3_uri(value)
        except s3.S3Error:
            raise forms.ValidationError("Enter an S3 address like s3://bucket/prefix/.") from None
        if location.bucket == settings.LOUPE_S3_BUCKET:
            raise forms.ValidationError("That is Loupe's own storage bucket: choose another one.")
        return value

    def clean_image_bucket(self):
        bucket = self.cleaned_data["image_bucket"].strip()
        if bucket and bucket == settings.LOUPE_S3_BUCKET:
            raise forms.ValidationError("That is Loupe's own storage bucket: choose another one.")
        return bucket

    def clean_output_location(self):
        return self._clean_s3_prefix("output_location")

    def clean_published_images_uri(self):
        return self._clean_s3_prefix("published_images_uri")

    def clean(self):
        cleaned = super().clean()
        region, arn = cleaned.get("region"), cleaned.get("rekognition_project_arn")
        problem = arn_mismatch(arn, region) if region and arn else None
        if problem:
            self.add_error("rekognition_project_arn", problem)
        bucket = cleaned.get("image_bucket")
        if region and bucket and ({"image_bucket", "region"} & set(self.changed_data)):
            # One S3 call when the bucket or the region changes; no answer (no permission, no
            # credentials here) is no objection: imports check again.
            problem = bucket_mismatch(bucket, s3.bucket_region(bucket, region=region), region)
            if problem:
                self.add_error("image_bucket", problem)
        return cleaned
