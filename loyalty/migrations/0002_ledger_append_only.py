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

SQLITE_FORWARD = [
    """CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON loyalty_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON loyalty_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: DELETE refused'); END""",
]

SQLITE_BACKWARD = [
    "DROP TRIGGER ledger_entry_no_update",
    "DROP TRIGGER ledger_entry_no_delete",
]


def forward(apps, schema_editor):
    _run(schema_editor, POSTGRES_FORWARD, SQLITE_FORWARD)


def backward(apps, schema_editor):
    _run(schema_editor, POSTGRES_BACKWARD, SQLITE_BACKWARD)


def _run(schema_editor, postgres_sql, sqlite_statements):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(postgres_sql, params=None)
    elif vendor == "sqlite":
        for statement in sqlite_statements:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
