"""Static files in production: hashed names, compressed, and the review editor's module imports too."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    # The review editor is ES modules loaded without a bundler: their relative imports must name the
    # hashed files too, or a browser could run a new entry module with cached old ones after a deploy.
    # Only Loupe's own modules: vendored scripts (django-htmx's extensions) import bare names that
    # Django's rewriting cannot resolve.
    support_js_module_import_aggregation = True
    _js_module_import_aggregation_patterns = (
        "reviewer/js/*.js",
        CompressedManifestStaticFilesStorage._js_module_import_aggregation_patterns[1],
    )
