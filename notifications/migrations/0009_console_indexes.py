"""The operations console's indexes (notifications/console/stats.py): BRIN on the deliveries' and attempts'
`created_at` (a period's rows), and the failed deliveries by `failed_at` (partial: failed rows only).

What they cost the write path: a fan-out insert adds to a BRIN index only when it opens a new block range (128
pages, thousands of rows) and `autosummarize` has the summary done in the background; the partial index takes a
row only when it fails. Built CONCURRENTLY (outside a transaction) so publishing is never blocked.
"""

import django.contrib.postgres.indexes
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("notifications", "0008_publisher_scope")]

    operations = [
        AddIndexConcurrently(
            model_name="delivery",
            index=django.contrib.postgres.indexes.BrinIndex(
                autosummarize=True, fields=["created_at"], name="delivery_created_brin"
            ),
        ),
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(condition=models.Q(status="failed"), fields=["failed_at"], name="delivery_failed_at"),
        ),
        AddIndexConcurrently(
            model_name="deliveryattempt",
            index=django.contrib.postgres.indexes.BrinIndex(
                autosummarize=True, fields=["created_at"], name="attempt_created_brin"
            ),
        ),
    ]
