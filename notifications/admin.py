from django.contrib import admin

from notifications.models import Delivery, DeliveryAttempt, Device, Notification


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = [
        "recipient",
        "status",
        "attempts",
        "push_attempts",
        "sent_at",
        "acknowledged_at",
        "read_at",
        "pushed_at",
        "failed_at",
        "failure_reason",
    ]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event", "title", "priority", "published_by", "document", "expires_at"]
    list_filter = ["event", "priority"]
    search_fields = ["id", "title", "body", "event"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "created_at"]
    list_select_related = ["published_by", "document"]
    inlines = [DeliveryInline]


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["created_at", "channel", "outcome", "device", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "notification",
        "recipient",
        "status",
        "attempts",
        "push_attempts",
        "next_attempt_at",
        "failure_reason",
        "created_at",
    ]
    list_filter = ["status", "failure_reason", "notification__event"]
    search_fields = ["recipient__username", "notification__id", "notification__title"]
    date_hierarchy = "created_at"
    list_select_related = ["notification", "recipient"]
    readonly_fields = ["notification", "recipient", "created_at", "updated_at"]
    inlines = [DeliveryAttemptInline]


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(admin.ModelAdmin):
    list_display = ["created_at", "delivery", "channel", "outcome", "device", "error"]
    list_filter = ["channel", "outcome"]
    search_fields = ["delivery__recipient__username", "delivery__notification__id", "error"]
    list_select_related = ["delivery", "device"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["user", "platform", "app_install_id", "active", "deactivated_reason", "last_seen_at"]
    list_filter = ["platform", "active"]
    search_fields = ["user__username", "app_install_id", "token"]
    list_select_related = ["user"]
