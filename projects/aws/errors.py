"""One explanation of AWS errors for every adapter: what went wrong and what to do."""

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
    SSOError,
    TokenRetrievalError,
)

NO_CREDENTIALS = "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
# Failures to get credentials before any request is sent (an expired SSO session, a broken profile).
CREDENTIAL_LOAD_ERRORS = (SSOError, TokenRetrievalError, CredentialRetrievalError, PartialCredentialsError)
# Answers meaning the credentials themselves are expired or not valid: no retry and no other image
# can succeed with them.
BAD_CREDENTIALS = {
    "ExpiredTokenException", "ExpiredToken", "UnrecognizedClientException", "InvalidSignatureException",
    "InvalidClientTokenId", "IncompleteSignatureException", "MissingAuthenticationTokenException",
    "RequestExpired",
}
# Throttling, whatever the service calls it (Rekognition says LimitExceededException too).
THROTTLING = {"ThrottlingException", "ProvisionedThroughputExceededException", "LimitExceededException"}

# Error codes that mean the same thing whichever service answers.
ACCESS_DENIED = {
    "AccessDenied", "AccessDeniedException", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch",
}
NOT_FOUND = {"ResourceNotFoundException", "NoSuchKey", "404"}


def error_parts(error):
    """(code, message) of a botocore ClientError."""
    details = error.response.get("Error", {})
    return details.get("Code", ""), details.get("Message", "")


def attempts(error):
    """How many calls botocore made before this ClientError: its retries plus the first call."""
    return 1 + int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)


def credentials_message(code, message):
    """One line for credentials AWS refused or that could not be loaded."""
    return (
        f"AWS refused the credentials ({code}: {message}): renew them ('aws sso login', fresh "
        "session keys, or the right AWS_PROFILE) and run again"
    )


def explain(error, *, service):
    """One line for a botocore error from `service` ("S3", "Rekognition")."""
    if isinstance(error, NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(error, CREDENTIAL_LOAD_ERRORS):
        return credentials_message(type(error).__name__, str(error))
    if not isinstance(error, ClientError):
        return f"{service} error: {error}"
    code, message = error_parts(error)
    if code in BAD_CREDENTIALS:
        return credentials_message(code, message)
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
