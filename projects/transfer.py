"""Moving a whole project between installations: export_project / import_project.

One JSON document holds the project and its labels, members (by username), model versions,
iterations, images (their addresses: S3 objects stay where they are; local files are not copied),
proposals, boxes and reviews. Background runs, leases and stored metrics are not moved: they belong
to the installation that ran them (metrics are measured again from the reviews).

Rows are written with new primary keys; every reference (including the proposal and label ids
inside a review's decisions) is mapped to them. The import is one transaction: a project is moved
whole or not at all.
"""

import json

from django.contrib.auth import get_user_model
from django.db import models, transaction

from projects.models import Image, Iteration, LabelClass, Membership, ModelVersion, Project, Proposal
from reviewer.models import Box, Review

FORMAT = "loupe-project"
VERSION = 1
# (key, model, the field naming the rows' owner, excluded fields) in dependency order.
TABLES = [
    ("labels", LabelClass, "project", ()),
    ("model_versions", ModelVersion, "project", ()),
    ("iterations", Iteration, "project", ()),
    ("images", Image, "iteration__project", ("leased_by", "lease_expires_at")),
    ("proposals", Proposal, "image__iteration__project", ()),
    ("boxes", Box, "image__iteration__project", ()),
    ("reviews", Review, "image__iteration__project", ()),
]
PROJECT_EXCLUDED = ("id", "slug")


class TransferError(ValueError):
    """The document cannot be imported; the message says why and what to do."""


def _row(instance, excluded=()):
    row = {}
    for field in instance._meta.concrete_fields:
        if field.name in excluded:
            continue
        value = getattr(instance, field.attname)
        if isinstance(field, models.ForeignKey) and field.related_model is get_user_model():
            row[field.name] = _username(value)
        elif value is None:
            row[field.attname] = None
        else:
            row[field.attname] = field.value_to_string(instance) if not isinstance(
                field, (models.JSONField, models.ForeignKey, models.FloatField, models.IntegerField,
                        models.BooleanField)) else value
    return row


_usernames = {}


def _username(user_id):
    if user_id is None:
        return None
    if user_id not in _usernames:
        _usernames[user_id] = get_user_model().objects.values_list("username", flat=True).get(pk=user_id)
    return _usernames[user_id]


def export_project(project):
    """The project as a JSON-serialisable dict."""
    _usernames.clear()
    document = {
        "format": FORMAT, "version": VERSION, "slug": project.slug,
        "project": _row(project, PROJECT_EXCLUDED),
        "members": [{"username": m.user.username, "role": m.role}
                    for m in project.memberships.select_related("user").order_by("id")],
    }
    for key, model, owner, excluded in TABLES:
        rows = model.objects.filter(**{owner: project}).order_by("pk")
        document[key] = [_row(row, excluded) for row in rows.iterator(chunk_size=2000)]
    return document


def write_project(project, handle):
    json.dump(export_project(project), handle)


def import_project(document, *, slug=None):
    """Create the project the document describes; returns it. TransferError if it cannot."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise TransferError("not a Loupe project file (made by manage.py export_project)")
    if document.get("version") != VERSION:
        raise TransferError(f"project file version {document.get('version')!r}; this Loupe reads {VERSION}")
    slug = slug or document["slug"]
    if Project.objects.filter(slug=slug).exists():
        raise TransferError(f"a project {slug!r} exists already: import under another name with --slug")
    users = _users(document)
    with transaction.atomic():
        project = Project(slug=slug, **_fields(Project, document["project"], {}, users)[0])
        project.full_clean()
        project.save()
        for member in document["members"]:
            Membership.objects.create(project=project, user=users[member["username"]], role=member["role"])
        maps = {Project: {None: project.pk}}
        deferred = []
        for key, model, _owner, _excluded in TABLES:
            maps[model] = {}
            for row in document[key]:
                fields, later = _fields(model, row, maps, users, project=project)
                if model is Review:
                    fields["decisions"] = [_decision(d, maps) for d in fields.get("decisions") or []]
                instance = model.objects.create(**fields)
                maps[model][row["id"]] = instance.pk
                deferred += [(model, instance.pk, *entry) for entry in later]
        for model, pk, attname, related, old in deferred:
            if old not in maps[related]:
                raise TransferError(f"a {model._meta.verbose_name} refers to {related._meta.verbose_name} "
                                    f"{old}, which the file does not hold: the file is damaged")
            model.objects.filter(pk=pk).update(**{attname: maps[related][old]})
    return project


def _users(document):
    names = {m["username"] for m in document["members"]}
    for key, model, _owner, _excluded in TABLES:
        user_fields = [f.name for f in model._meta.concrete_fields
                       if isinstance(f, models.ForeignKey) and f.related_model is get_user_model()]
        for row in document[key]:
            names.update(row[name] for name in user_fields if row.get(name))
    User = get_user_model()
    users = {user.username: user for user in User.objects.filter(username__in=names)}
    for name in sorted(names - set(users)):
        # Someone who reviewed there but has no account here: an account that cannot log in
        # until an administrator sets its password, so their reviews keep their author.
        user = User(username=name, is_active=False)
        user.set_unusable_password()
        user.save()
        users[name] = user
    return users


def _fields(model, row, maps, users, *, project=None):
    """(the row's field values for a new instance, [(attname, related model, old id)] to set later)."""
    fields, later = {}, []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if isinstance(field, models.ForeignKey):
            related = field.related_model
            if related is get_user_model():
                if field.name in row:
                    name = row[field.name]
                    fields[field.attname] = users[name].pk if name else None
                continue
            if field.attname not in row:
                continue
            old = row[field.attname]
            if related is Project:
                fields[field.attname] = project.pk
            elif old is None:
                fields[field.attname] = None
            elif related in maps and old in maps[related]:
                fields[field.attname] = maps[related][old]
            elif related in maps:
                raise TransferError(f"a {model._meta.verbose_name} refers to {related._meta.verbose_name} "
                                    f"{old}, which the file does not hold: the file is damaged")
            else:
                # Refers to a row written later (iteration -> its shown model, model -> trained
                # from a later one): set once every row exists.
                fields[field.attname] = None
                later.append((field.attname, related, old))
            continue
        if field.attname in row:
            fields[field.attname] = field.to_python(row[field.attname]) if isinstance(
                row[field.attname], str) and not isinstance(field, models.JSONField) else row[field.attname]
    return fields, later


def _decision(decision, maps):
    decision = dict(decision)
    if decision.get("proposal") is not None:
        decision["proposal"] = maps[Proposal].get(decision["proposal"])
    if decision.get("label") is not None:
        decision["label"] = maps[LabelClass].get(decision["label"])
    return decision
