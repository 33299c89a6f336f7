import pytest

from tests.factories import make_user


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes files into its own folder, never into ./var."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def empty_cache():
    """Every test starts with an empty cache: throttles (reconcile_soon) and cached URLs of one
    test never decide what another sees."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def database_tasks(settings):
    """Tasks go through the real database backend (django-tasks-db) instead of running inline.

    Returns run_worker(): `manage.py db_worker --batch` in-process, which runs every queued task
    and returns once the queue is empty. The worker commits and closes connections as in
    production, so tests using it need @pytest.mark.django_db(transaction=True).
    """
    import signal

    from django.core.management import call_command

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    # The worker installs its own shutdown handlers; pytest's must come back afterwards.
    names = [name for name in ("SIGINT", "SIGTERM", "SIGQUIT") if hasattr(signal, name)]
    saved = {name: signal.getsignal(getattr(signal, name)) for name in names}

    def run_worker():
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", "--interval", "0",
                     verbosity=0)

    yield run_worker
    for name, handler in saved.items():
        signal.signal(getattr(signal, name), handler)


@pytest.fixture
def s3(aws_env):
    """A moto-backed S3 (opt-in): yields a client; the app's cached clients are reset around it."""
    from moto import mock_aws

    from projects.aws import s3 as s3_module

    s3_module.client.cache_clear()
    with mock_aws():
        import boto3

        yield boto3.client("s3", region_name="us-east-1")
    s3_module.client.cache_clear()


@pytest.fixture
def rekognition_stubber(aws_env, monkeypatch):
    """A botocore Stubber on the Rekognition client every Loupe call gets (opt-in)."""
    import boto3
    from botocore.stub import Stubber

    from projects.aws import rekognition

    client = boto3.client("rekognition", region_name="us-east-1")
    monkeypatch.setattr(rekognition, "client", lambda region=None: client)
    with Stubber(client) as stubber:
        yield stubber


@pytest.fixture
def sagemaker_stubber(aws_env, monkeypatch):
    """A botocore Stubber on the SageMaker client every Loupe call gets (opt-in)."""
    import boto3
    from botocore.stub import Stubber

    from projects.aws import sagemaker

    client = boto3.client("sagemaker", region_name="us-east-1")
    monkeypatch.setattr(sagemaker, "client", lambda region=None: client)
    with Stubber(client) as stubber:
        yield stubber


@pytest.fixture
def aws_env(monkeypatch):
    """Fake credentials so boto3 never looks for real ones."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def owner(db):
    return make_user("owner")


@pytest.fixture
def reviewer(db):
    return make_user("reviewer")
