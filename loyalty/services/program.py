from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils.translation import gettext_lazy as _

from core.errors import AppError
from loyalty.models import Program, ProgramChange

RULE_FIELDS = [
    "earn_rate",
    "redeem_rate",
    "redeem_max_ratio",
    "redeem_min_points",
    "expiry_policy",
    "reminder_days",
    "hold_minutes",
    "adjustment_approval_threshold",
    "promotion_stacking",
    "bonus_daily_cap",
]


def program_rules_update(*, program: Program, staff_user) -> ProgramChange | None:
    """Save edited rules and record who changed what; None when nothing changed.

    The rules are validated here too: an expiry policy that does not parse would
    fail every purchase from then on, and no constraint in the database stops it."""
    try:
        program.full_clean()
    except ValidationError as exc:
        raise AppError(
            "validation_error", _("The rules are not valid; see details."), details=exc.message_dict
        ) from None
    with transaction.atomic():
        stored = Program.objects.select_for_update().get(pk=program.pk)
        old = model_to_dict(stored, fields=RULE_FIELDS)
        new = model_to_dict(program, fields=RULE_FIELDS)
        changed = [name for name in RULE_FIELDS if old[name] != new[name]]
        if not changed:
            return None
        program.save()
        return ProgramChange.objects.create(
            changed_by=staff_user,
            old_values={name: old[name] for name in changed},
            new_values={name: new[name] for name in changed},
        )
