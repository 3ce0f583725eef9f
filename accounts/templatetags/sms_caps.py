from django import template
from django.conf import settings

from accounts.sms.caps import sms_total_cap_trip

register = template.Library()


@register.inclusion_tag("admin/accounts/sms_cap_notice.html", takes_context=True)
def sms_cap_notice(context):
    """Tells staff who follow the texts that nobody gets a code right now."""
    request = context["request"]
    if not request.user.has_perm("accounts.view_smsmessage"):
        return {"trip": None}
    return {"trip": sms_total_cap_trip(), "cap": settings.SMS_CAP_TOTAL_PER_HOUR}
