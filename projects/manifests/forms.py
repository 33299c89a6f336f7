"""The options a person can choose for a manifest export from the iteration page."""

from django import forms


class ManifestOptionsForm(forms.Form):
    include_unreviewed = forms.BooleanField(
        required=False, label="Include unreviewed images (the model's proposals, marked machine-made)"
    )
    no_empty = forms.BooleanField(required=False, label="Leave out images verified as empty")
    test_fraction = forms.FloatField(
        required=False, min_value=0.01, max_value=0.99, label="Test fraction (publish only)",
        help_text="Also write a test manifest with this share of the images, e.g. 0.2.",
    )

    def export_options(self):
        """Keyword arguments for the manifest functions."""
        return {
            "include_unreviewed": self.cleaned_data["include_unreviewed"],
            "include_empty": not self.cleaned_data["no_empty"],
        }

    def query(self):
        """The chosen options as a query string for the download link."""
        params = {}
        if self.cleaned_data["include_unreviewed"]:
            params["include_unreviewed"] = "on"
        if self.cleaned_data["no_empty"]:
            params["no_empty"] = "on"
        return params
