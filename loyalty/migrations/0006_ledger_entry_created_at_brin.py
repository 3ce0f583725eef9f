"""A BRIN index on ledger entries' dates, for the manager's dashboard (this month's
points earned, redeemed and expired).

The ledger is append-only and entries are dated when they are written, so the table
lies on disk in date order: a BRIN index of a few dozen kB (for millions of entries,
next to nothing per insert) lets a query for this month skip the rest of the table."""

from django.db import migrations

FORWARD = "CREATE INDEX entry_created_brin ON loyalty_ledgerentry USING brin (created_at)"
BACKWARD = "DROP INDEX entry_created_brin"


def forward(apps, schema_editor):
    schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0005_adjustments_rule_changes_key_use")]

    operations = [migrations.RunPython(forward, backward)]
