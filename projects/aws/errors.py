"""One explanation of AWS errors for every adapter: what went wrong and what to do."""

from botocore.exceptions import ClientError, NoCredentialsError

NO_CREDENTIALS = "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"

# Error codes that mean the same thing whichever service answers.
ACCESS_DENIED = {
    "AccessDenied", "AccessDeniedException", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch",
}
NOT_FOUND = {"ResourceNotFoundException", "NoSuchKey", "404"}


def error_parts(error):
    """(code, message) of a botocore ClientError."""
    details = error.response.get("Error", {})
    return details.get("Code", ""), details.get("Message", "")


def explain(error, *, service):
    """One line for a botocore error from `service` ("S3", "Rekognition")."""
    if isinstance(error, NoCredentialsError):
        return NO_CREDENTIALS
    if not isinstance(error, ClientError):
        return f"{service} error: {error}"
    code, message = error_parts(error)
    if code == "NoSuchBucket":
        return f"bucket does not exist ({message})"
    if code in ACCESS_DENIED:
        if service == "S3":
            return f"access denied by S3: check the credentials and the bucket policy ({code})"
        return f"access denied by {service} ({message}): check the credentials' IAM policy"
    if code in NOT_FOUND:
        if service == "S3":
            return "object not found in S3"
        return f"not found in {service} ({message}): check the ARN in the project settings"
    if code == "ResourceInUseException":
        return f"the model is busy ({message}): wait for its current start or stop to finish"
    return f"{service} error {code}: {message}"
