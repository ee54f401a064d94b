"""A user's devices, the FCM registration tokens the push fallback sends to."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.errors import NotificationError
from notifications.models import Device

# The `deactivated_reason` of a device the per-user cap switched off (FCM's reasons are its error codes).
DEACTIVATED_OVER_LIMIT = "device_limit"


def device_register(*, user_id: int, token: str, platform: str, app_install_id: str) -> tuple[Device, bool]:
    """Register (or refresh) the FCM token of one app install; returns (device, created).

    One row per install: registering again from the same install replaces its
    token and reactivates it. A token belongs to one install, so a token that
    moves (another user signs in on the phone, or the app was reinstalled)
    leaves its previous row, and its previous owner no longer gets pushes on it.
    A user keeps at most NOTIFY_MAX_DEVICES_PER_USER active devices: past it,
    the ones registered longest ago are deactivated (`device_limit`).
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
    _lock_registrations_of(user_id)
    now = timezone.now()  # taken under the lock: the user's registrations are timed in the order they commit
    install = Device.objects.select_for_update().filter(user_id=user_id, app_install_id=app_install_id).first()
    # exclude(pk=None) excludes nothing (IS NULL); django-stubs refuses None for a pk lookup.
    Device.objects.filter(token=token).exclude(pk=install.pk if install else None).delete()  # type: ignore[misc]
    if install is None:
        device = Device.objects.create(
            user_id=user_id, token=token, platform=platform, app_install_id=app_install_id, last_seen_at=now
        )
    else:
        device = install
        device.token = token
        device.platform = platform
        device.active = True
        device.deactivated_reason = ""
        device.last_seen_at = now
        device.save(update_fields=["token", "platform", "active", "deactivated_reason", "last_seen_at"])
    _deactivate_over_limit(user_id=user_id)
    return device, install is None


def _lock_registrations_of(user_id: int) -> None:
    """Make the user's registrations take turns, so each counts the devices the one before it left.

    The lock is on the user's row: locking their device rows would not do for a user with none yet (two first
    registrations would each count only their own). FOR NO KEY UPDATE leaves the row's key free, so
    deliveries inserted for the user meanwhile (their foreign key check) do not wait for it.
    """
    list(get_user_model().objects.select_for_update(no_key=True).filter(pk=user_id).values_list("pk"))


def _deactivate_over_limit(*, user_id: int) -> int:
    """Deactivate the user's active devices beyond the newest NOTIFY_MAX_DEVICES_PER_USER (by registration)."""
    active = Device.objects.filter(user_id=user_id, active=True)
    newest = active.order_by("-last_seen_at", "-id").values("pk")[: settings.NOTIFY_MAX_DEVICES_PER_USER]
    return active.exclude(pk__in=newest).update(active=False, deactivated_reason=DEACTIVATED_OVER_LIMIT)


@transaction.atomic
def device_delete(*, user_id: int, device_id: int) -> None:
    """Forget one of the user's devices (on sign-out); someone else's device is `not_found`."""
    deleted, _ = Device.objects.filter(pk=device_id, user_id=user_id).delete()
    if not deleted:
        raise NotificationError(f"No device {device_id} of yours.", code="not_found")
