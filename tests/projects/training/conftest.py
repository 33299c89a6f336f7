from datetime import UTC, datetime

import pytest

from projects.models import Image
from tests.factories import make_box, make_image, make_iteration, make_project

PROJECT_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/1700000000000"
PROJECT_PATH = PROJECT_ARN.rsplit("/", 1)[0]
TRAIN_DATASET = f"{PROJECT_PATH}/dataset/train/1700000000100"
TEST_DATASET = f"{PROJECT_PATH}/dataset/test/1700000000101"
VERSION_ARN = f"{PROJECT_PATH}/version/v2/1700000000200"
WHEN = datetime(2026, 11, 28, 10, 15, 3, tzinfo=UTC)


def reviewed(iteration, source, *boxes):
    image = make_image(iteration, source=source, status=Image.Status.REVIEWED, reviewed_at=WHEN)
    for label_name, box in boxes:
        make_box(image, label_name, box)
    return image


@pytest.fixture
def seed(owner):
    """The seed case: logos/v1 (2 labeled images, the test set) and logos/v2 (3 reviewed images)."""
    project = make_project("logos", owner=owner, rekognition_project_arn=PROJECT_ARN,
                           output_location="s3://out-bucket/loupe/")
    v1 = make_iteration(project, "v1")
    reviewed(v1, "s3://my-bucket/v1/a.jpg", ("aws-logo", (10, 20, 100, 50)))
    reviewed(v1, "s3://my-bucket/v1/b.jpg", ("smile-logo", (30, 40, 60, 60)))
    v2 = make_iteration(project, "v2")
    reviewed(v2, "s3://my-bucket/v2/c.jpg", ("aws-logo", (1, 2, 300, 200)))
    reviewed(v2, "s3://my-bucket/v2/d.jpg", ("smile-logo", (5, 6, 70, 80)), ("aws-logo", (500, 400, 90, 90)))
    reviewed(v2, "s3://my-bucket/v2/e.jpg", ("smile-logo", (100, 100, 64, 64)))
    return project, v1, v2
