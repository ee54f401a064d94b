"""Query filters of the inbox and of the delivery status list."""

from django_filters import rest_framework as filters

from core.api.filters import IdFilter, StrictBooleanFilter, UtcDateTimeFilter
from notifications.models import UNREAD_DELIVERIES, Delivery


class InboxFilter(filters.FilterSet):
    unread = StrictBooleanFilter(
        method="filter_unread", label="true: only unread; false: only read (or resolved: nothing left to do)."
    )
    event = filters.CharFilter(field_name="notification__event", max_length=64, label="Only this event name.")
    since = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Only those created at or after this ISO 8601 time."
    )

    class Meta:
        model = Delivery
        fields = ["unread", "event", "since"]

    def filter_unread(self, queryset, name, value: bool):
        return queryset.filter(UNREAD_DELIVERIES) if value else queryset.exclude(UNREAD_DELIVERIES)


class DeliveryStatusFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Delivery.Status.choices, label="Only deliveries in this status.")
    recipient = IdFilter(field_name="recipient_id", label="Only this recipient (user id).")
    username = filters.CharFilter(field_name="recipient__username", max_length=150, label="Only this recipient.")

    class Meta:
        model = Delivery
        fields = ["status", "recipient", "username"]
