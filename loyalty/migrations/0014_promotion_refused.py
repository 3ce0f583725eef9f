from django.db import migrations

# The earn under earning rules is one statement (services/purchases.py). When a
# promotion's use or budget it took turns out to be beyond the limit, the statement must
# write nothing at all; raising an error from SQL is what undoes a single statement's
# writes without a transaction around it. The rule and why reach the caller as the
# error's detail and hint.
CREATE = """
CREATE FUNCTION loyalty_promotion_refused(rule_id bigint, reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'promotion_refused', DETAIL = rule_id::text, HINT = reason;
END
$$
"""
DROP = "DROP FUNCTION loyalty_promotion_refused(bigint, text)"


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0013_refund_lines")]

    operations = [migrations.RunSQL(CREATE, DROP)]
