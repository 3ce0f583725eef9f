"""The ledger is append-only in the database itself, not only in the code.

TRUNCATE was left allowed here; 0008_ledger_refuses_truncate refuses it too."""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE FUNCTION loyalty_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_entry_append_only
    BEFORE UPDATE OR DELETE ON loyalty_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION loyalty_ledger_append_only();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER ledger_entry_append_only ON loyalty_ledgerentry;
DROP FUNCTION loyalty_ledger_append_only();
"""

def forward(apps, schema_editor):
    schema_editor.execute(POSTGRES_FORWARD, params=None)


def backward(apps, schema_editor):
    schema_editor.execute(POSTGRES_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
