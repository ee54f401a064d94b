"""A user's devices, the FCM registration tokens the push fallback sends to."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.errors import NotificationError
from notifications.models import Device


def device_register(*, user_id: int, token: str, platform: str, app_install_id: str) -> tuple[Device, bool]:
    """Register (or refresh) the FCM token of one app install; returns (device, created).

    One row per install: registering again from the same install replaces its
    token and reactivates it. A token belongs to one install, so a token that
    moves (another user signs in on the phone, or the app was reinstalled)
    leaves its previous row, and its previous owner no longer gets pushes on it.
    """
    if platform not in Device.Platform.values:
        raise NotificationError(f"Unknown platform {platform!r}.", code="invalid")
    try:
        return _register(user_id=user_id, token=token, platform=platform, app_install_id=app_install_id)
    except IntegrityError:
        # Lost a race with a registration of the same token or install: the winner's row is there now.
        return _register(user_id=user_id, token=token, platform=platform, app_install_id=app_install_id)


@transaction.atomic
def _register(*, user_id: int, token: str, platform: str, app_install_id: str) -> tuple[Device, bool]:
    now = timezone.now()
    install = Device.objects.select_for_update().filter(user_id=user_id, app_install_id=app_install_id).first()
    # exclude(pk=None) excludes nothing (IS NULL); django-stubs refuses None for a pk lookup.
    Device.objects.filter(token=token).exclude(pk=install.pk if install else None).delete()  # type: ignore[misc]
    if install is None:
        device = Device.objects.create(
            user_id=user_id, token=token, platform=platform, app_install_id=app_install_id, last_seen_at=now
        )
        return device, True
    install.token = token
    install.platform = platform
    install.active = True
    install.deactivated_reason = ""
    install.last_seen_at = now
    install.save(update_fields=["token", "platform", "active", "deactivated_reason", "last_seen_at"])
    return install, False


@transaction.atomic
def device_delete(*, user_id: int, device_id: int) -> None:
    """Forget one of the user's devices (on sign-out); someone else's device is `not_found`."""
    deleted, _ = Device.objects.filter(pk=device_id, user_id=user_id).delete()
    if not deleted:
        raise NotificationError(f"No device {device_id} of yours.", code="not_found")
