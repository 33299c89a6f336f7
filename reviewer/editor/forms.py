import datetime
import json

from django import forms

from projects import geometry
from reviewer.editor.reviews import MAX_BOXES, NO_MODEL_VERSION, BoxInput

# Bounds for ids and counters that reach the database: a larger JSON integer would overflow the
# column (a 500) instead of failing validation.
MAX_BIGINT = 2**63 - 1
MAX_VERSION = 2**31 - 1
BOX_KEYS = {"label", "left", "top", "width", "height", "proposal"}
# Rekognition's images are at most 4096 px a side: a coordinate this far out is no box, and bounding
# it keeps every sum (right = left + width) and product (an area) finite downstream.
MAX_COORDINATE = 1_000_000


class PayloadError(ValueError):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def _refuse_constant(name):
    raise PayloadError("body", f"{name} is not a number Loupe accepts; send finite numbers only.")


def parse_json_body(body):
    """The request body as a JSON object, or PayloadError with a message a person can act on."""
    try:
        data = json.loads(body or b"null", parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PayloadError("body", f"The request body is not valid JSON ({error}).") from error
    except RecursionError as error:
        raise PayloadError("body", "The request body is nested too deeply to be a review; "
                                   "send the editor's JSON object.") from error
    if not isinstance(data, dict):
        raise PayloadError("body", "The request body must be a JSON object.")
    return data


def _strict_int(value, field, message, *, bound=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise forms.ValidationError(message, code=field)
    if bound is not None and not 0 < value <= bound:
        raise forms.ValidationError(message, code=field)
    return value


class BoxListField(forms.Field):
    """A JSON list of {label, left, top, width, height, proposal} objects → BoxInput list."""

    def to_python(self, value):
        if value in (None, ""):
            return []
        if not isinstance(value, list):
            raise forms.ValidationError("boxes must be a list of box objects.")
        if len(value) > MAX_BOXES:
            raise forms.ValidationError(
                f"An image can have at most {MAX_BOXES} boxes; this review has {len(value)}."
            )
        return [self._box(index, item) for index, item in enumerate(value)]

    def _box(self, index, item):
        prefix = f"Box {index + 1}"
        if not isinstance(item, dict):
            raise forms.ValidationError(f"{prefix} must be an object.", code=f"boxes[{index}]")
        unknown = sorted(set(item) - BOX_KEYS)
        if unknown:
            raise forms.ValidationError(f"{prefix} has unknown fields: {', '.join(unknown)}.",
                                        code=f"boxes[{index}]")
        numbers = {}
        for name in ("left", "top", "width", "height"):
            if not geometry.all_finite(item.get(name)):
                raise forms.ValidationError(f"{prefix}: {name} must be a finite number of pixels.",
                                            code=f"boxes[{index}].{name}")
            numbers[name] = float(item[name])
            if abs(numbers[name]) > MAX_COORDINATE:
                raise forms.ValidationError(
                    f"{prefix}: {name} must be within {MAX_COORDINATE:,} pixels of the image.",
                    code=f"boxes[{index}].{name}")
        label = _strict_int(item.get("label"), f"boxes[{index}].label",
                            f"{prefix}: label must be a label id (an integer).", bound=MAX_BIGINT)
        proposal = item.get("proposal")
        if proposal is not None:
            _strict_int(proposal, f"boxes[{index}].proposal",
                        f"{prefix}: proposal must be a proposal id (an integer) or null.",
                        bound=MAX_BIGINT)
        return BoxInput(label_id=label, proposal_id=proposal, **numbers)


class IdListField(forms.Field):
    def __init__(self, *, message="hidden must be a list of proposal ids.", **kwargs):
        super().__init__(**kwargs)
        self.message = message

    def to_python(self, value):
        if value in (None, ""):
            return []
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise forms.ValidationError(self.message)
        return value


class StrictIntegerField(forms.IntegerField):
    """JSON integers only: "3", 3.5 and true are refused rather than coerced."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        return _strict_int(value, "integer", "Enter a whole number.")


class StrictDateTimeField(forms.DateTimeField):
    """An ISO 8601 string only: Django's field would call .strip() on a JSON number, list or object."""

    def to_python(self, value):
        if value is not None and not isinstance(value, str):
            raise forms.ValidationError("Enter a date/time as a string, such as 2026-01-02T03:04:05Z.")
        result = super().to_python(value)
        if result is not None:
            try:
                # Stored in UTC: 9999-12-31T23:59:59-14:00 parses but overflows there.
                result.astimezone(datetime.UTC)
            except (OverflowError, ValueError) as error:
                raise forms.ValidationError(
                    "Enter a date/time between the years 1 and 9999 in UTC, such as 2026-01-02T03:04:05Z."
                ) from error
        return result


class StrictBooleanField(forms.BooleanField):
    def to_python(self, value):
        if value in (None, False):
            return False
        if value is True:
            return True
        raise forms.ValidationError("Must be true or false.")


class SubmitReviewForm(forms.Form):
    version = StrictIntegerField(min_value=0, max_value=MAX_VERSION, error_messages={
        "required": "version is missing: send the image version the page was opened with."})
    # The model version of the proposals the page showed (its payload's "model_version").
    model_version = StrictIntegerField(min_value=1, max_value=MAX_BIGINT, required=False)
    boxes = BoxListField(required=False)
    hidden = IdListField(required=False)
    # Images this reviewer has open in other tabs of the browser (the editor's tabs tell each other):
    # the image that follows is none of them, or two tabs would review the same image.
    open_elsewhere = IdListField(required=False, message="open_elsewhere must be a list of image ids.")
    # HiddenInput hands the raw JSON value to the field; a checkbox widget would coerce "yes" to True.
    no_objects = StrictBooleanField(required=False, widget=forms.HiddenInput)
    # No upper bound: a tab left open for days still saves; submit_review caps the time recorded.
    elapsed_ms = StrictIntegerField(min_value=0, required=False)
    started_at = StrictDateTimeField(required=False)

    def clean_model_version(self):
        # Absent (a script that does not say): the iteration's current model. null: the page showed
        # no model's proposals, so there is nothing to accept or reject.
        if "model_version" not in self.data:
            return None
        value = self.cleaned_data["model_version"]
        return NO_MODEL_VERSION if value is None else value

    def first_error(self):
        """(field, message) for the first problem, the field named as precisely as known."""
        for name, errors in self.errors.as_data().items():
            error = errors[0]
            field = error.code if name == "boxes" and (error.code or "").startswith("boxes[") else name
            message = error.messages[0]
            if not message.startswith(("Box ", "An image", "boxes", "hidden", "open_elsewhere", "version")):
                message = f"{name}: {message}"
            return field, message
        return None
