"""One training flow for the next model version: Loupe's offline detector or Rekognition Custom Labels.

A request names the iteration to train from, the new version's name, the backend and the test
set (another iteration, or a fraction of this one split off). Local training is delegated to
projects.local_model. Rekognition training is a TrainingRun moved forward one step per poll by
`advance`:

  publish   the train and test manifests are validated and published to the project's output
            location (projects.manifests.publish); the project's old datasets are deleted when
            asked to (replacing: until DescribeDataset no longer finds them);
  create    CreateDataset TRAIN and TEST from the published manifests;
  datasets  DescribeDataset until both are CREATE_COMPLETE (on CREATE_FAILED the per-line errors
            come from ListDatasetEntries(HasErrors=True) and are kept per image), then
            CreateProjectVersion;
  training  DescribeProjectVersions until TRAINING_COMPLETED (F1, per-label thresholds and the
            evaluation summary go onto the ModelVersion) or TRAINING_FAILED; either way
            Rekognition's own per-line validation verdicts are mapped back onto images.

The run's `details` hold the phase and everything a later poll needs. Services never import
tasks: projects.training.tasks queues and re-queues the polls.
"""

import json
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from projects.aws import rekognition as aws
from projects.aws import rekognition_training as rk
from projects.aws import s3
from projects.aws.rekognition import RekognitionError
from projects.local_model.training import TrainingError
from projects.local_model.training import check_request as check_local_request
from projects.manifests.checks import split_problems
from projects.manifests.export import ManifestError
from projects.manifests.importing import _local_source_mapper
from projects.manifests.publish import output_location, publish_to_s3
from projects.models import ACTIVE_RUN_STATUSES, Image, ModelVersion, RunStatus, TrainingRun
from projects.proposals.rekognition import parse_evaluation_summary

__all__ = ["TrainingError", "TrainingRequest", "check_request", "create_rekognition_run", "advance",
           "begin", "follow", "line_problems", "set_thresholds", "training_iterations", "POLL_SECONDS"]

REKOGNITION, LOCAL = "rekognition", "local"
BACKENDS = (REKOGNITION, LOCAL)
VERSION_NAME = re.compile(r"[a-zA-Z0-9_.\-]{1,255}")
POLL_SECONDS = 60
PROBLEMS_KEPT = 500
# Polls of a version Rekognition is training that may fail in a row (throttling, the network)
# before Loupe gives up following it; the training itself goes on in AWS regardless.
MAX_POLL_ERRORS = 5

PUBLISH, REPLACING, CREATE, DATASETS, TRAINING, DONE = (
    "publish", "replacing", "create", "datasets", "training", "done")
Status = ModelVersion.Status
# Where a version can be after training succeeded (someone may start it before Loupe looks again).
TRAINED = {Status.TRAINING_COMPLETED, Status.STARTING, Status.RUNNING, Status.STOPPING, Status.STOPPED,
           Status.FAILED, Status.COPYING_IN_PROGRESS, Status.COPYING_COMPLETED, Status.COPYING_FAILED,
           Status.DEPRECATED, Status.EXPIRED}


@dataclass(frozen=True)
class TrainingRequest:
    iteration: object
    version_name: str
    backend: str = REKOGNITION
    test_from: object = None
    test_fraction: float | None = None
    include_earlier: bool = False  # local only: learn from the earlier iterations' reviews too
    replace_datasets: bool = False  # Rekognition only: delete the project's old TRAIN/TEST datasets

    @property
    def project(self):
        return self.iteration.project

    def describe(self):
        if self.test_from is not None:
            test = f"tested on {self.test_from.name}"
        elif self.test_fraction:
            test = f"tested on {self.test_fraction:.0%} of it"
        else:
            test = "no test set"
        where = "Rekognition" if self.backend == REKOGNITION else "local"
        return f"{where} model {self.version_name} from {self.iteration.name}, {test}"


def training_iterations(request):
    """The iterations whose reviewed boxes train the model, oldest first, never the test one."""
    chosen = [request.iteration]
    if request.include_earlier:
        earlier = request.project.iterations.filter(created_at__lte=request.iteration.created_at)
        chosen = [i for i in earlier.order_by("created_at", "id") if i.pk != request.iteration.pk]
        chosen.append(request.iteration)
    test = request.test_from
    return [i for i in chosen if test is None or i.pk != test.pk]


def check_request(request):
    """TrainingError saying what to change when the request cannot be trained."""
    project = request.project
    if request.backend not in BACKENDS:
        raise TrainingError(f"unknown backend {request.backend!r}: choose rekognition or local")
    if request.test_from is not None and request.test_fraction is not None:
        raise TrainingError("name a test iteration or a test fraction, not both")
    if request.test_from is not None:
        if request.test_from.project_id != project.pk:
            raise TrainingError(f"the test iteration {request.test_from} belongs to another project")
        if request.test_from.pk == request.iteration.pk:
            raise TrainingError("the test iteration cannot be the one trained on: choose another, "
                                "or split off a test fraction")
    if request.test_fraction is not None and not 0 < request.test_fraction < 1:
        raise TrainingError(
            f"the test fraction must be between 0 and 1 (e.g. 0.2); got {request.test_fraction}")
    if request.backend == LOCAL:
        if request.test_fraction is not None:
            raise TrainingError("the local trainer measures on a test iteration it never learns "
                                "from: name one instead of a test fraction")
        check_local_request(project=project, iterations=training_iterations(request),
                            name=request.version_name, held_out=request.test_from)
        return
    _check_rekognition(request)


def _check_rekognition(request):
    project, name = request.project, request.version_name
    if not VERSION_NAME.fullmatch(name or ""):
        raise TrainingError(f"{name!r} cannot name a Rekognition version: use 1 to 255 letters, "
                            "digits, '.', '_' or '-' (e.g. v2)")
    if name_taken(project=project, name=name):
        raise TrainingError(f"project {project.slug!r} already has a model version named {name!r}")
    if not project.rekognition_project_arn:
        raise TrainingError(f"project {project.slug!r} has no Rekognition project ARN: set it in the "
                            "project settings")
    try:
        output_location(project)
    except ManifestError as error:
        raise TrainingError(str(error)) from None
    if request.test_from is None and request.test_fraction is None:
        raise TrainingError("Rekognition needs a test set: name a test iteration (e.g. v1) or a "
                            "test fraction (e.g. 0.2)")
    busy = project.training_runs.filter(kind=ModelVersion.Kind.REKOGNITION, status__in=ACTIVE_RUN_STATUSES)
    if busy.exists():
        raise TrainingError(f"a Rekognition training of project {project.slug!r} is under way "
                            f"(run #{busy.first().pk}): its datasets are in use until it ends")


def name_taken(*, project, name):
    # A failed attempt that never reached Rekognition (no ARN) leaves its row to show why; it does
    # not take the name. A version Rekognition knows keeps it there, so here too.
    return project.model_versions.filter(name=name).exclude(Q(status=Status.FAILED) & Q(arn="")).exists()


# -- the Rekognition run ------------------------------------------------------------------------------

def create_rekognition_run(request, *, user=None):
    """The queued TrainingRun and its new ModelVersion (status TRAINING, no ARN yet)."""
    check_request(request)
    project = request.project
    with transaction.atomic():
        project.model_versions.filter(name=request.version_name, status=Status.FAILED, arn="").delete()
        try:
            # A savepoint: the same start clicked twice at once passes check_request in both requests,
            # and the unique name lets only one of them through.
            with transaction.atomic():
                model_version = ModelVersion.objects.create(
                    project=project, name=request.version_name, kind=ModelVersion.Kind.REKOGNITION,
                    status=Status.TRAINING, status_message="waiting to publish the manifests",
                    trained_from=request.iteration,
                )
        except IntegrityError:
            raise TrainingError(
                f"model version {request.version_name!r} was created a moment ago, probably by the same "
                "start sent twice: follow its training below, or choose another name"
            ) from None
        return TrainingRun.objects.create(
            project=project, iteration=request.iteration, model_version=model_version,
            kind=ModelVersion.Kind.REKOGNITION, created_by=user, message=request.describe(),
            details={
                "phase": PUBLISH, "version_name": request.version_name,
                "test_from": request.test_from.pk if request.test_from is not None else None,
                "test_fraction": request.test_fraction, "replace_datasets": request.replace_datasets,
            },
        )


def begin(run):
    """Mark a queued run RUNNING (a poll of a running one leaves it as it is)."""
    if run.status == RunStatus.QUEUED:
        run.status, run.started_at = RunStatus.RUNNING, timezone.now()
        run.save(update_fields=["status", "started_at"])
    return run


def _finish(run, status, *, error="", message=None):
    run.details["phase"] = DONE
    run.status, run.error, run.finished_at = status, error, timezone.now()
    if message is not None:
        run.message = message
    run.save(update_fields=["status", "error", "finished_at", "message", "details"])


def _save_details(run):
    run.save(update_fields=["details"])


def _client(run):
    return aws.client(run.project.region or None)


def advance(run, *, rekognition=None):
    """One step of a Rekognition TrainingRun; True when the run has finished (either way).

    Failures Loupe can explain end the run FAILED with the explanation (and the ModelVersion
    FAILED when Rekognition never got to train it); unexpected ones are recorded and re-raised.
    """
    phase = run.details.get("phase", PUBLISH)
    if phase == DONE or run.status not in ACTIVE_RUN_STATUSES:
        return True
    try:
        rekognition = rekognition or _client(run)
        if phase == PUBLISH:
            _publish(run, rekognition)
            return False
        if phase == REPLACING:
            _replace(run, rekognition)
            return False
        if phase == CREATE:
            _create_datasets(run, rekognition)
            return False
        if phase == DATASETS:
            return _check_datasets(run, rekognition)
        return _check_training(run, rekognition)
    except RekognitionError as error:
        if phase != TRAINING:
            _fail(run, str(error))
            return True
        return _poll_failed(run, error)
    except (TrainingError, ManifestError, s3.S3Error) as error:
        _fail(run, str(error))
        return True
    except Exception as error:
        _fail(run, f"{type(error).__name__}: {error}")
        raise


def follow(run, *, sleep, rekognition=None, on_step=None, poll_seconds=POLL_SECONDS):
    """Advance the run until it ends, waiting poll_seconds only while Rekognition is busy.

    on_step(run): called after each step (the command prints the phase and status).
    """
    while True:
        before = run.details.get("phase")
        finished = advance(run, rekognition=rekognition)
        if on_step is not None:
            on_step(run)
        if finished:
            return run
        if run.details.get("phase") == before:
            sleep(poll_seconds)


def _poll_failed(run, error):
    """A poll of a version in training failed: try again later, up to MAX_POLL_ERRORS in a row."""
    failures = run.details.get("poll_errors", 0) + 1
    run.details["poll_errors"] = failures
    if failures < MAX_POLL_ERRORS:
        run.details.setdefault("notes", []).append(f"poll {failures} failed: {error}")
        run.details["notes"] = run.details["notes"][-MAX_POLL_ERRORS:]
        _save_details(run)
        return False
    _fail(run, f"Loupe stopped following the training after {failures} failed polls ({error}); it may "
               f"go on in Rekognition: 'manage.py sync_models {run.project.slug}' reads its outcome")
    return True


def _fail(run, error):
    model_version = run.model_version
    if model_version is not None and not model_version.arn:
        model_version.status, model_version.status_message = Status.FAILED, error
        model_version.save(update_fields=["status", "status_message"])
    _finish(run, RunStatus.FAILED, error=error)


def _test_iteration(run):
    pk = run.details.get("test_from")
    return run.project.iterations.get(pk=pk) if pk else None


def _status(run, message):
    model_version = run.model_version
    model_version.status_message = message
    model_version.save(update_fields=["status_message"])


def _publish(run, rekognition):
    """Check the project's datasets, then validate and publish the train and test manifests."""
    iteration, details = run.iteration, run.details
    existing = rk.project_datasets(run.project.rekognition_project_arn, rekognition=rekognition)
    if existing and not details.get("replace_datasets"):
        kinds = " and ".join(sorted(d["DatasetType"] for d in existing))
        raise TrainingError(
            f"the Rekognition project already has {kinds} datasets: Loupe creates new ones from the "
            "published manifests; train again with 'replace the project's datasets' "
            "(--replace-datasets) to delete the old ones (models trained from them are kept)"
        )
    _status(run, "validating and publishing the manifests")
    user = run.created_by
    if details.get("test_fraction"):
        export = _published(iteration, user, test_fraction=details["test_fraction"])
        files = export.report["files"]
        manifests = {"TRAIN": files[0]["uri"], "TEST": files[1]["uri"]}
        details["exports"] = [export.pk]
    else:
        test = _test_iteration(run)
        train_export = _published(iteration, user)
        test_export = _published(test, user)
        details["exports"] = [train_export.pk, test_export.pk]
        _check_sets(iteration, train_export, test, test_export)
        manifests = {"TRAIN": train_export.uri, "TEST": test_export.uri}
    details["datasets"] = {kind: {"manifest": uri} for kind, uri in manifests.items()}
    if existing:
        for dataset in existing:
            rk.delete_dataset(dataset["DatasetArn"], rekognition=rekognition)
        details["replacing"] = [dataset["DatasetArn"] for dataset in existing]
        details["phase"] = REPLACING
        _status(run, "deleting the project's old datasets")
    else:
        details["phase"] = CREATE
    _save_details(run)


def _published(iteration, user, test_fraction=None):
    """publish_to_s3, with a refusal naming the iteration and the export that holds the report."""
    try:
        return publish_to_s3(iteration=iteration, test_fraction=test_fraction, user=user)
    except ManifestError as error:
        export = iteration.exports.order_by("-pk").first()
        where = f" (export #{export.pk} has the report)" if export is not None else ""
        raise ManifestError(f"{iteration.name}: {error}{where}") from None


def _check_sets(train_iteration, train_export, test_iteration, test_export):
    """Rekognition's train/test rules across two iterations: no shared image, test covers the labels."""
    def sources(iteration):
        return set(iteration.images.filter(status=Image.Status.REVIEWED).values_list("source", flat=True))

    def labels(export):
        return set((export.report.get("validation") or {}).get("labels", {}))

    problems = split_problems(sources(train_iteration), labels(train_export),
                              sources(test_iteration), labels(test_export))
    if problems:
        raise TrainingError(f"{train_iteration.name} and {test_iteration.name} cannot be the training "
                            f"and test sets: {'; '.join(problems)}")


def _replace(run, rekognition):
    remaining = []
    for arn in run.details.get("replacing", []):
        try:
            rk.describe_dataset(arn, rekognition=rekognition)
        except rk.DatasetGone:
            continue
        remaining.append(arn)
    run.details["replacing"] = remaining
    if not remaining:
        run.details["phase"] = CREATE
    _save_details(run)


def _create_datasets(run, rekognition):
    project_arn = run.project.rekognition_project_arn
    for kind, dataset in run.details["datasets"].items():
        location = s3.parse_s3_uri(dataset["manifest"])
        dataset["arn"] = rk.create_dataset(project_arn, kind, bucket=location.bucket, key=location.key,
                                           rekognition=rekognition)
        _save_details(run)
    run.details["phase"] = DATASETS
    _save_details(run)
    _status(run, "Rekognition is creating the datasets")


def _check_datasets(run, rekognition):
    datasets = run.details["datasets"]
    for kind, dataset in datasets.items():
        if dataset.get("status") == "CREATE_COMPLETE":
            continue
        description = rk.describe_dataset(dataset["arn"], rekognition=rekognition)
        dataset.update(
            status=description.get("Status", ""), message=description.get("StatusMessage", ""),
            code=description.get("StatusMessageCode", ""), stats=description.get("DatasetStats", {}),
        )
        # Once created (or not), the lines Rekognition refused are listed; a created dataset may
        # still have some, which Rekognition leaves out of training.
        ended = dataset["status"] in ("CREATE_FAILED", "CREATE_COMPLETE")
        if ended and (dataset["status"] == "CREATE_FAILED" or dataset["stats"].get("ErrorEntries")):
            entries = rk.dataset_entries(dataset["arn"], has_errors=True, rekognition=rekognition)
            _add_problems(run, kind, entries)
    _save_details(run)
    failed = [kind for kind, dataset in datasets.items() if dataset["status"] == "CREATE_FAILED"]
    if failed:
        reasons = "; ".join(
            f"{kind}: {datasets[kind]['message']} ({datasets[kind]['code']})" for kind in failed
        )
        lines = len(run.details.get("problems", []))
        _fail(run, f"Rekognition could not create the {' and '.join(failed)} dataset ({reasons}); "
                   f"{lines} line(s) with errors, listed per image")
        return True
    if any(dataset["status"] != "CREATE_COMPLETE" for dataset in datasets.values()):
        return False
    location = output_location(run.project)
    prefix = location.key if not location.key or location.key.endswith("/") else location.key + "/"
    name = run.details["version_name"]
    arn = rk.create_project_version(
        run.project.rekognition_project_arn, name, output_bucket=location.bucket,
        output_prefix=f"{prefix}rekognition/{name}/", rekognition=rekognition,
    )
    model_version = run.model_version
    model_version.arn, model_version.status = arn, Status.TRAINING_IN_PROGRESS
    model_version.status_message = "Rekognition is training (training time is billed)"
    model_version.save(update_fields=["arn", "status", "status_message"])
    run.details["phase"] = TRAINING
    _save_details(run)
    return False


def _check_training(run, rekognition):
    name = run.details["version_name"]
    description = rk.describe_project_version(
        run.project.rekognition_project_arn, name, rekognition=rekognition)
    run.details["poll_errors"] = 0
    status = description.get("Status", "")
    model_version = run.model_version
    model_version.status, model_version.status_message = status, description.get("StatusMessage", "")
    if status == Status.TRAINING_IN_PROGRESS:
        model_version.save(update_fields=["status", "status_message"])
        _save_details(run)
        return False
    run.details["billable_seconds"] = description.get("BillableTrainingTimeInSeconds")
    _read_validation(run, description)
    if status in TRAINED:
        _store_evaluation(run, model_version, description)
        model_version.save()
        f1 = f"F1 {model_version.f1:.3f}" if model_version.f1 is not None else "no F1"
        _finish(run, RunStatus.SUCCEEDED, message=f"{run.message}: {f1}")
        return True
    model_version.save(update_fields=["status", "status_message"])
    reason = model_version.status_message or "no reason given"
    _finish(run, RunStatus.FAILED, error=f"Rekognition training ended {status}: {reason}")
    return True


def set_thresholds(model_version, by_label_name):
    """The one place training writes per-label thresholds (0..100): Rekognition names labels, the
    model keeps them by label id; names the project does not have are skipped."""
    label_ids = dict(model_version.project.labels.values_list("name", "pk"))
    model_version.thresholds = ModelVersion.thresholds_from(
        {label_ids[name]: value for name, value in by_label_name.items() if name in label_ids}
    )


def _store_evaluation(run, model_version, description):
    evaluation = description.get("EvaluationResult") or {}
    model_version.f1 = evaluation.get("F1Score")
    location = (evaluation.get("Summary") or {}).get("S3Object")
    if not location:
        return
    try:
        raw = s3.read_object(location["Bucket"], location["Name"], region=run.project.region or None)
        data = json.loads(raw)
        summary = parse_evaluation_summary(data)
    except (s3.S3Error, ValueError, AttributeError, KeyError, TypeError) as error:
        run.details.setdefault("notes", []).append(f"evaluation summary not read: {error}")
        return
    set_thresholds(model_version, summary.thresholds)
    if model_version.f1 is None:
        model_version.f1 = summary.f1
    model_version.training_images = summary.training_images
    model_version.evaluation = _evaluation(data)


def _evaluation(data):
    aggregated = data.get("AggregatedEvaluationResults", {})
    metrics = aggregated.get("Metrics", aggregated)
    per_label = {}
    for result in data.get("LabelEvaluationResults", []):
        label_metrics = result.get("Metrics") or {}
        per_label[result["Label"]] = {
            "precision": label_metrics.get("Precision"), "recall": label_metrics.get("Recall"),
            "f1": label_metrics.get("F1Score"), "threshold": label_metrics.get("Threshold"),
        }
    return {"precision": metrics.get("Precision"), "recall": metrics.get("Recall"),
            "f1": metrics.get("F1Score"), "per_label": per_label}


def _read_validation(run, description):
    """RCL's own per-line verdicts (validation manifests) onto images; the summary's own errors."""
    region = run.project.region or None
    for kind, key in (("TRAIN", "TrainingDataResult"), ("TEST", "TestingDataResult")):
        assets = ((description.get(key) or {}).get("Validation") or {}).get("Assets", [])
        for asset in assets:
            location = (asset.get("GroundTruthManifest") or {}).get("S3Object")
            if not location:
                continue
            try:
                text = s3.read_object(location["Bucket"], location["Name"], region=region).decode("utf-8")
            except (s3.S3Error, UnicodeDecodeError) as error:
                run.details.setdefault("notes", []).append(f"{kind} validation results not read: {error}")
                continue
            _add_problems(run, kind, text.splitlines())
    location = (description.get("ManifestSummary") or {}).get("S3Object")
    if location:
        try:
            summary = json.loads(s3.read_object(location["Bucket"], location["Name"], region=region))
        except (s3.S3Error, ValueError) as error:
            run.details.setdefault("notes", []).append(f"manifest summary not read: {error}")
        else:
            run.details["manifest_errors"] = [_error_text(item) for item in summary.get("errors") or []]
            run.details["manifest_statistics"] = summary.get("statistics") or {}
    _save_details(run)


# -- per-line problems ------------------------------------------------------------------------------

ERROR_KEYS = ("errors", "cl-errors")


def _error_text(item):
    if isinstance(item, dict):
        code = item.get("code") or item.get("Code") or ""
        message = item.get("message") or item.get("Message") or item.get("description") or ""
        return f"{code}: {message}" if code and message else code or message or json.dumps(item)
    return str(item)


def line_problems(text):
    """(source-ref, [errors], [warnings]) of one manifest line Rekognition handed back.

    Errors sit on the line, its label attribute, its metadata or one annotation ("box N: ...").
    """
    try:
        obj = json.loads(text)
    except ValueError as error:
        return "", [f"not JSON ({error})"], []
    if not isinstance(obj, dict):
        return "", ["not a JSON object"], []
    errors, warnings = [], []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ERROR_KEYS or key == "warnings":
                    items = value if isinstance(value, list) else [value]
                    target = warnings if key == "warnings" else errors
                    target.extend(f"{where}{_error_text(item)}" for item in items)
                elif isinstance(value, dict | list):
                    walk(value, where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for key, value in obj.items():
        if key in ERROR_KEYS or key == "warnings":
            walk({key: value}, "")
        elif isinstance(value, dict):
            annotations = value.get("annotations")
            rest = {k: v for k, v in value.items() if k != "annotations"}
            walk(rest, "")
            if isinstance(annotations, list):
                for index, annotation in enumerate(annotations, start=1):
                    walk(annotation, f"box {index}: ")
    source = obj.get("source-ref")
    return (source if isinstance(source, str) else ""), errors, warnings


def _add_problems(run, kind, lines):
    """Keep each line with errors or warnings, mapped to its image in Loupe where there is one."""
    iteration = run.iteration if kind == "TRAIN" or run.details.get("test_fraction") else _test_iteration(run)
    problems = run.details.setdefault("problems", [])
    found = []
    for text in lines:
        if not text.strip():
            continue
        source, errors, warnings = line_problems(text)
        if errors or warnings:
            found.append({"set": kind, "source_ref": source, "errors": errors, "warnings": warnings,
                          "image_id": None, "image": ""})
    room = max(PROBLEMS_KEPT - len(problems), 0)
    if len(found) > room:
        run.details["problems_dropped"] = run.details.get("problems_dropped", 0) + len(found) - room
        found = found[:room]
    _map_to_images(iteration, found)
    problems.extend(found)


def _map_to_images(iteration, problems):
    if iteration is None or not problems:
        return
    local = _local_source_mapper(iteration)
    wanted = {}
    for problem in problems:
        source = problem["source_ref"]
        wanted[source] = source
        candidate = local(source) if source else None
        if candidate:
            wanted[candidate] = source
    found = iteration.images.filter(source__in=list(wanted)).values_list("pk", "name", "source")
    by_ref = {wanted[source]: (pk, name) for pk, name, source in found}
    for problem in problems:
        if problem["source_ref"] in by_ref:
            problem["image_id"], problem["image"] = by_ref[problem["source_ref"]]
