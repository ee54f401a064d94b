from django.contrib.admin.apps import AdminConfig


class NotifyHubAdminConfig(AdminConfig):
    """django.contrib.admin with NotifyHub's site (notifyhub/admin.py): its sign-in locks out after failures."""

    default_site = "notifyhub.admin.NotifyHubAdminSite"
