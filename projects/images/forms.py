from django import forms

from projects.aws import s3


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
        try:
            bucket = s3.parse_s3_uri(source).bucket
        except s3.S3Error:
            raise forms.ValidationError("Enter an S3 address like s3://bucket/prefix/.") from None
        if not self.project.image_bucket:
            raise forms.ValidationError(
                "Set the project's image bucket in Settings first; imports come from that bucket."
            )
        if bucket != self.project.image_bucket:
            raise forms.ValidationError(
                f"Import from the project's image bucket, s3://{self.project.image_bucket}/."
            )
        return source
