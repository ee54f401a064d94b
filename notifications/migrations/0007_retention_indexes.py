"""The retention pruner's indexes: settled deliveries by `updated_at` (partial: open rows stay out of it), and
idempotency keys by `created_at`.

Built CONCURRENTLY (outside a transaction): a plain CREATE INDEX would block every publish, send and ack on the
deliveries table for as long as it reads the table.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("notifications", "0006_delivery_failure_recipient_inactive")]

    operations = [
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(
                condition=~models.Q(status__in=["pending", "sent"]),
                fields=["updated_at"],
                name="delivery_settled_updated",
            ),
        ),
        AddIndexConcurrently(
            model_name="idempotencykey",
            index=models.Index(fields=["created_at"], name="idempotency_key_created"),
        ),
    ]
