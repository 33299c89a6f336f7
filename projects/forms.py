from django import forms

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
    source = forms.CharField(
        label="S3 prefix", max_length=1024,
        widget=forms.TextInput(attrs={"placeholder": "s3://bucket/prefix/"}),
    )

    def clean_source(self):
        source = self.cleaned_data["source"].strip()
        if not source.startswith("s3://") or len(source) <= len("s3://"):
            raise forms.ValidationError("Enter an S3 address like s3://bucket/prefix/.")
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
        if value and not value.startswith("s3://"):
            raise forms.ValidationError("Enter an S3 address like s3://bucket/prefix/.")
        return value

    def clean_output_location(self):
        return self._clean_s3_prefix("output_location")

    def clean_published_images_uri(self):
        return self._clean_s3_prefix("published_images_uri")
