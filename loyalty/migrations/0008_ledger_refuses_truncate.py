"""TRUNCATE of the ledger is refused too: it skips the row triggers that refuse UPDATE
and DELETE, so without this one a single statement could empty the ledger.

The trigger fires for a TRUNCATE of the entries and for every TRUNCATE that cascades to
them (of members, stores, staff). Django's flush still empties the database, where a
superuser runs it: the project's PostgreSQL backend (core/postgresql) flushes with
`session_replication_role = replica`, which skips this trigger and which only a
superuser may set."""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE TRIGGER ledger_entry_no_truncate
    BEFORE TRUNCATE ON loyalty_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_ledger_append_only();
"""

POSTGRES_BACKWARD = "DROP TRIGGER ledger_entry_no_truncate ON loyalty_ledgerentry;"


def forward(apps, schema_editor):
    schema_editor.execute(POSTGRES_FORWARD, params=None)


def backward(apps, schema_editor):
    schema_editor.execute(POSTGRES_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0007_member_erasure")]

    operations = [migrations.RunPython(forward, backward)]
