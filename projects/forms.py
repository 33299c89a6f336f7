from django import forms
from django.conf import settings

from projects.models import Project


def first_error(form):
    """One line for the first problem of an invalid form, named by the field's label."""
    name, errors = next(iter(form.errors.items()))
    field = form.fields.get(name)
    if field is None:
        return errors[0]
    label = field.label or name.replace("_", " ").capitalize()
    return f"{label}: {errors[0]}"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".jpg,.jpeg,.png"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class UploadImagesForm(forms.Form):
    files = MultipleFileField(label="Images (JPEG or PNG)")


class S3ImportForm(forms.Form):
    """An S3 prefix to import from the browser: only from the project's own image bucket, since
    the server's credentials may reach buckets (Loupe's own storage among them) its owners may not."""

    source = forms.CharField(
        label="S3 prefix", max_length=1024,
        widget=forms.TextInput(attrs={"placeholder": "s3://bucket/prefix/"}),
    )

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_source(self):
        source = self.cleaned_data["source"].strip()
        if not source.startswith("s3://") or len(source) <= len("s3://"):
            raise forms.ValidationError("Enter an S3 address like s3://bucket/prefix/.")
        bucket = source[len("s3://"):].split("/", 1)[0]
        if not self.project.image_bucket:
            raise forms.ValidationError(
                "Set the project's image bucket in Settings first; imports come from that bucket."
            )
        if bucket != self.project.image_bucket:
            raise forms.ValidationError(
                f"Import from the project's image bucket, s3://{self.project.image_bucket}/."
            )
        return source


class ProjectSettingsForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = [
            "name", "region", "image_bucket", "output_location", "published_images_uri",
            "rekognition_project_arn", "review_order",
        ]

    def _clean_s3_prefix(self, field):
        value = self.cleaned_data[field].strip()
        if value and (not value.startswith("s3://") or not value[len("s3://"):].split("/", 1)[0]):
            raise forms.ValidationError("Enter an S3 address like s3://bucket/prefix/.")
        if value and value[len("s3://"):].split("/", 1)[0] == settings.LOUPE_S3_BUCKET:
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
