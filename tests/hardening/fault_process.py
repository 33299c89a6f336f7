"""The processes tests/hardening/test_worker_faults.py starts and SIGKILLs, each its own Django on
the scratch database named by DATABASE_URL:

    python -m tests.hardening.fault_process migrate
    python -m tests.hardening.fault_process setup IMAGES [--proposed]
                                                            a project, its images, a model
                                                            (--proposed: with its answers stored)
    python -m tests.hardening.fault_process propose         queue a proposal run (as the page does)
    python -m tests.hardening.fault_process worker          a real `db_worker --batch`, the model slow
    python -m tests.hardening.fault_process reconcile       `reconcile_runs --stale-after 0`
    python -m tests.hardening.fault_process export FILE     `export_manifest`, writing slowly
    python -m tests.hardening.fault_process publish         queue a publish to S3, split train/test

S3 is a folder (FAULT_BUCKET_DIR/<bucket>/<key>) in the worker: an upload appears whole, as S3's
do, after SECONDS_PER_UPLOAD.

The model is a stand-in with a fixed answer per image (expected_detections) that takes a while per
image, so a kill lands mid-run; everything else is the product's own code.
"""

import os
import sys
import time

PROJECT, ITERATION, MODEL = "faults", "v1", "m1"
SECONDS_PER_IMAGE = 0.03
SECONDS_PER_LINE = 0.01
SECONDS_PER_UPLOAD = 1.0


def expected_detections(position):
    """What the stand-in model says about the image at `position`: 0, 1 or 2 boxes."""
    return [("aws-logo" if k == 0 else "smile-logo", (10.0 + 100 * k, 20.0 + position % 7, 60.0, 40.0),
             80.0 + k) for k in range(position % 3)]


class SlowModel:
    def detect(self, image):
        time.sleep(SECONDS_PER_IMAGE)
        return self.answer(image)

    def answer(self, image):
        from projects.detections import Detection

        return [Detection(label, confidence, box)
                for label, box, confidence in expected_detections(image.position)]


def setup(images, proposed=False):
    from projects.models import Image, Iteration, LabelClass, ModelVersion, Project

    project = Project.objects.create(slug=PROJECT, name="Faults")
    for order, name in enumerate(("aws-logo", "smile-logo")):
        LabelClass.objects.create(project=project, name=name, order=order, hotkey=order + 1)
    iteration = Iteration.objects.create(project=project, name=ITERATION)
    Image.objects.bulk_create(
        Image(iteration=iteration, source=f"s3://faults/v1/img-{n:05d}.jpg", name=f"img-{n:05d}.jpg",
              width=1024, height=768, position=n)
        for n in range(images)
    )
    model = ModelVersion.objects.create(project=project, name=MODEL, kind=ModelVersion.Kind.REKOGNITION,
                                        status=ModelVersion.Status.READY)
    if proposed:
        from django.db import transaction

        from projects.proposals.runs import store_detections

        with transaction.atomic():
            for image in iteration.images.order_by("position"):
                store_detections(image=image, model_version=model, detections=SlowModel().answer(image))
        iteration.shown_model = model
        iteration.save(update_fields=["shown_model"])


def propose():
    from projects.models import Iteration, ModelVersion
    from projects.proposals.tasks import start_proposal_run

    iteration = Iteration.objects.get(project__slug=PROJECT, name=ITERATION)
    model = ModelVersion.objects.get(project=iteration.project, name=MODEL)
    run = start_proposal_run(iteration=iteration, model_version=model, concurrency=1)
    print(run.pk)


def folder_s3():
    """projects.aws.s3's upload, delete and owner calls on a local folder."""
    from pathlib import Path

    from projects.aws import s3

    root = Path(os.environ["FAULT_BUCKET_DIR"])

    def upload_fileobj(fileobj, bucket, key, **options):
        time.sleep(SECONDS_PER_UPLOAD)
        target = root / bucket / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = root / f".upload-{os.getpid()}"
        partial.write_bytes(fileobj.read())
        os.replace(partial, target)

    s3.upload_fileobj = upload_fileobj
    s3.delete_object = lambda bucket, key, **options: (root / bucket / key).unlink(missing_ok=True)
    s3.bucket_owner = lambda bucket, **options: ""


def publish():
    from projects.manifests.tasks import start_publish
    from projects.models import Iteration

    iteration = Iteration.objects.select_related("project").get(project__slug=PROJECT, name=ITERATION)
    iteration.project.output_location = "s3://out/manifests/"
    iteration.project.save(update_fields=["output_location"])
    print(start_publish(iteration=iteration, include_unreviewed=True, test_fraction=0.2).pk)


def worker():
    from django.core.management import call_command

    from projects.proposals import runs

    runs.backend_for = lambda model_version: SlowModel()
    folder_s3()
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", "--interval", "0", verbosity=0)


def export(path):
    from django.core.management import call_command

    from projects.manifests import publish

    write_manifest = publish.write_manifest

    class SlowOut:
        def __init__(self, out):
            self.out = out

        def write(self, text):
            time.sleep(SECONDS_PER_LINE)
            return self.out.write(text)

    def slowly(*, out, **arguments):
        return write_manifest(out=SlowOut(out), **arguments)

    publish.write_manifest = slowly
    call_command("export_manifest", f"{PROJECT}/{ITERATION}", "--output", path, "--include-unreviewed")


def main(argv):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.hardening.fault_settings")
    import django

    django.setup()
    command, *arguments = argv
    if command == "migrate":
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    elif command == "setup":
        setup(int(arguments[0]), proposed="--proposed" in arguments)
    elif command == "propose":
        propose()
    elif command == "worker":
        worker()
    elif command == "reconcile":
        from django.core.management import call_command

        call_command("reconcile_runs", "--stale-after", "0")
    elif command == "export":
        export(arguments[0])
    elif command == "publish":
        publish()
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
