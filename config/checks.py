"""`check --deploy` refuses a content security policy that no longer protects the admin.

The admin shows what staff and storefronts typed (store and reward names, notes): a
policy that lets inline or eval'd script run, or lets another site frame the pages,
would let markup that slipped into one of them act with a staff member's session.
"""

from django.conf import settings
from django.core import checks
from django.urls import reverse

CSP_MIDDLEWARE = "csp.middleware.CSPMiddleware"
# Sources that let script in from anywhere, or from the page itself.
UNSAFE_SCRIPT_SOURCES = {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"}


@checks.register(checks.Tags.security, deploy=True)
def content_security_policy_check(app_configs, **kwargs):
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}
    directives = policy.get("DIRECTIVES") or {}
    admin = reverse("admin:index")
    if CSP_MIDDLEWARE not in settings.MIDDLEWARE or not directives:
        return [
            checks.Warning(
                "No Content-Security-Policy is sent.",
                hint=f"Add {CSP_MIDDLEWARE} to MIDDLEWARE and set CONTENT_SECURITY_POLICY.",
                id="project.W001",
            )
        ]
    found = []
    if any(admin.startswith(prefix) for prefix in policy.get("EXCLUDE_URL_PREFIXES", ())):
        found.append(
            checks.Warning(
                f"The Content-Security-Policy leaves out the admin ({admin}).",
                id="project.W002",
            )
        )
    script_sources = directives.get("script-src", directives.get("default-src")) or []
    unsafe = sorted(UNSAFE_SCRIPT_SOURCES.intersection(script_sources))
    if not script_sources or unsafe:
        found.append(
            checks.Warning(
                "The Content-Security-Policy lets any script run"
                + (f": script-src allows {', '.join(unsafe)}." if unsafe else "."),
                hint="Keep script-src (or default-src) to 'self': scripts live in static files.",
                id="project.W003",
            )
        )
    frame_ancestors = directives.get("frame-ancestors") or []
    if not frame_ancestors or "*" in frame_ancestors:
        found.append(
            checks.Warning(
                "The Content-Security-Policy lets any site frame the pages.",
                hint="Set frame-ancestors to 'none'.",
                id="project.W004",
            )
        )
    return found
