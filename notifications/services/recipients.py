"""What happens to a recipient's notifications when their account is deactivated."""

from django.db import transaction

from notifications import layer
from notifications.models import Delivery
from notifications.services.deliveries import deliveries_fail


@transaction.atomic
def recipient_deactivated(*, user_id: int) -> int:
    """A user was deactivated: fail their open deliveries (`recipient_inactive`) and, after commit, close
    their hub connections (4401). Returns how many deliveries it failed.

    Nothing is pushed to them any more (a push task that was already queued finds its delivery closed), and
    their sockets do not wait for their access token to expire.
    """
    open_deliveries = Delivery.objects.filter(recipient_id=user_id, status__in=Delivery.OPEN_STATUSES)
    failed = deliveries_fail(
        delivery_ids=list(open_deliveries.values_list("id", flat=True)),
        reason=Delivery.FailureReason.RECIPIENT_INACTIVE,
    )
    layer.user_deactivated_on_commit(user_id=user_id)
    return failed
