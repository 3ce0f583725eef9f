from django import template

from webhooks.admin import stopped_notices

register = template.Library()


@register.inclusion_tag("admin/webhooks/stopped_notices.html", takes_context=True)
def webhook_endpoints_stopped(context):
    """Tells staff who look after the endpoints, on admin's home page, of those the
    system switched off: nothing reaches those storefronts until somebody acts."""
    if not context["request"].user.has_perm("webhooks.view_endpoint"):
        return {"notices": []}
    return {"notices": stopped_notices()}
