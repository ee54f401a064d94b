"""Bring forward every open delivery whose next step was put off past any bound.

Earlier releases doubled an unacknowledged delivery's wait on each replay without a cap: a client that
reconnected often pushed `next_attempt_at` years ahead, past year 9999 after ~36 connects, and such a row
could no longer be read (`timestamp too large`). Nothing the product schedules lies more than a day ahead,
so those rows are made due: the next sweep resends or pushes them.
"""

from django.db import migrations

BRING_FORWARD = """
    UPDATE notifications_delivery
       SET next_attempt_at = now()
     WHERE status IN ('pending', 'sent') AND next_attempt_at > now() + interval '1 day'
"""


class Migration(migrations.Migration):
    dependencies = [("notifications", "0004_delivery_drop_redundant_key_indexes")]

    operations = [migrations.RunSQL(BRING_FORWARD, migrations.RunSQL.noop)]
