"""Issue 15, item 12: the web image has no OpenCV and no dlib (pyproject's `worker` extra), so
nothing the web server loads may import them: the WSGI application, every URLconf, and every
view module the URLconfs name. Run in a fresh interpreter where importing cv2 or dlib fails."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import importlib, sys

class Blocked:
    # What a web image without the worker extra does on `import cv2`.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("cv2", "dlib"):
            raise ImportError(f"{name} is not installed in the web image")
        return None

sys.meta_path.insert(0, Blocked())
import django
django.setup()
from config.wsgi import application  # noqa: F401
from django.urls import URLPattern, URLResolver, get_resolver

def modules(resolver):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield pattern.urlconf_module.__name__ if hasattr(pattern.urlconf_module, "__name__") else ""
            yield from modules(pattern)
        elif isinstance(pattern, URLPattern):
            callback = pattern.callback
            yield getattr(callback, "__module__", "") or ""

names = sorted({name for name in modules(get_resolver()) if name})
for name in names:
    importlib.import_module(name)
print(len(names), "modules;", "cv2" in sys.modules, "dlib" in sys.modules)
print("\n".join(names))
"""


def test_the_web_server_loads_without_opencv_or_dlib():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "web-imports-only",
           "DATABASE_URL": "sqlite:///:memory:", "DEBUG": "0"}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary, *names = result.stdout.splitlines()
    assert summary.endswith("modules; False False")
    # The walk reached the feature views, not just the root URLconf.
    assert {"projects.proposals.views", "projects.training.views", "reviewer.editor.views"} <= set(names)
