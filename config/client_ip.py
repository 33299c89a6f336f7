"""The client's address for login rate limiting (django-axes' AXES_CLIENT_IP_CALLABLE)."""

from django.conf import settings


def client_ip(request):
    """REMOTE_ADDR; behind a TLS proxy (BEHIND_TLS_PROXY), the address that proxy saw, i.e. the
    last X-Forwarded-For entry (earlier ones are whatever the client sent, so never trusted).
    Without this every login would come from the proxy's address and one attacker would lock
    everybody out."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR")
