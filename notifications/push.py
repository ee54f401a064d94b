"""The only module that talks to Firebase Cloud Messaging.

`send_push(payload=..., devices=...)` pushes one notification to some of a
user's devices and returns one `PushResult` per device; it never raises for an
FCM error, it classifies it:

- accepted: FCM took the message for that device;
- device_gone: UNREGISTERED or SENDER_ID_MISMATCH, the token is dead (deactivate it, never retry);
- retry: QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL, a timeout or an unknown server error
  (retry later, not before FCM's Retry-After);
- rejected: INVALID_ARGUMENT and every other permanent error (the message says why).

Two backends, chosen by NOTIFY_PUSH_BACKEND: `fcm` (firebase-admin, synchronous
`send_each`, at most 500 messages a call) and `log`, the default when no
credentials are configured, which contacts nothing and answers `simulated`.

Every message carries the notification id in its data, and the id as the
Android tag, APNs collapse id and Web Push tag, so a message that FCM delivers
twice (its SDK retries POSTs) replaces itself on the device instead of showing twice.

`send_resolution_push` uses that tag to replace a notification already pushed
once the work it was about is done (services/resolution.py): a data message
(`resolved: "true"`, the resolution) plus, unless NOTIFY_PUSH_CONTENT_MINIMAL, a
visible notification with the same tag and collapse id saying so ("Done: ..."),
not a silent data-only one: on Android and the web a data message does not reach
a notification the system tray already shows while the app is in the
background, and on iOS only an alert with the same collapse id replaces one.
Minimal content pushed no visible notification in the first place, so its
replacement is data-only too.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import firebase_admin
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone
from firebase_admin import credentials, exceptions, messaging
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from notifications.layer_messages import NotificationPayload, ResolvedNotification
from notifications.models import DeliveryAttempt, Device

logger = logging.getLogger(__name__)

Outcome = DeliveryAttempt.Outcome

# firebase-admin refuses more than 500 messages per send_each call.
FCM_BATCH_LIMIT = 500
# FCM allows 4,096 bytes of payload; past this the push carries only the id and event.
FCM_DATA_LIMIT = 3_500

DEVICE_GONE_ERRORS = (messaging.UnregisteredError, messaging.SenderIdMismatchError)
TEMPORARY_ERRORS = (
    exceptions.ResourceExhaustedError,  # QUOTA_EXCEEDED
    exceptions.UnavailableError,  # 503, refused connection
    exceptions.InternalError,  # 500
    exceptions.DeadlineExceededError,  # timeout
    exceptions.UnknownError,  # e.g. a 502 HTML page, a failed token refresh
)


@dataclass(frozen=True)
class PushResult:
    device_id: int
    outcome: str  # a DeliveryAttempt.Outcome
    error: str = ""  # "<FCM error code>: <message>", e.g. "UNREGISTERED: Requested entity was not found."
    code: str = ""  # the FCM error code alone
    retry_after: float | None = None  # seconds FCM asked us to wait before trying again


class PushBackend(Protocol):
    name: str

    def send(self, *, payload: NotificationPayload, devices: Sequence[Device]) -> list[PushResult]: ...

    def send_resolution(
        self, *, payload: NotificationPayload, resolved: ResolvedNotification, devices: Sequence[Device]
    ) -> list[PushResult]: ...

    def close(self) -> None: ...


def send_push(*, payload: NotificationPayload, devices: Sequence[Device]) -> list[PushResult]:
    """Push the notification `payload` (see layer.notification_payload) to `devices`, one result each."""
    if not devices:
        return []
    return get_backend().send(payload=payload, devices=devices)


def send_resolution_push(
    *, payload: NotificationPayload, resolved: ResolvedNotification, devices: Sequence[Device]
) -> list[PushResult]:
    """Replace the pushed notification `payload` on `devices` by one saying it was resolved, one result each."""
    if not devices:
        return []
    return get_backend().send_resolution(payload=payload, resolved=resolved, devices=devices)


# What the replacement says, by Notification.Resolution: a headline before the notification's title, and a body.
RESOLUTION_TEXTS = {
    "done": ("Done", "Already dealt with: nothing left to do."),
    "reassigned": ("Reassigned", "Someone else has this now."),
    "withdrawn": ("Withdrawn", "The requester withdrew the document."),
    "decided": ("Decided", "The document was decided already."),
    "retracted": ("Withdrawn", "The sender withdrew this notification."),
}


def build_resolution_message(
    payload: NotificationPayload, resolved: ResolvedNotification, token: str, *, content_minimal: bool
) -> messaging.Message:
    """The message that replaces `payload`'s on one device: same tag and collapse id, the resolution in data."""
    data = {
        "notification_id": payload["id"],
        "event": payload["event"],
        "resolved": "true",
        "resolution": resolved["resolution"],
        "resolved_at": resolved["resolved_at"],
    }
    show = not content_minimal
    headline, body = RESOLUTION_TEXTS.get(resolved["resolution"], ("Resolved", "Nothing left to do."))
    title = f"{headline}: {payload['title']}"
    collapse_id = payload["id"]
    with warnings.catch_warnings():  # `token`: see build_message
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(
            token=token,
            data=data,
            notification=messaging.Notification(title=title, body=body) if show else None,
            android=messaging.AndroidConfig(
                priority="high",  # replace it promptly: the original asks for work that is done
                notification=messaging.AndroidNotification(tag=collapse_id) if show else None,
            ),
            apns=messaging.APNSConfig(
                headers={"apns-collapse-id": collapse_id, "apns-priority": "10" if show else "5"},
                payload=None if show else messaging.APNSPayload(aps=messaging.Aps(content_available=True)),
            ),
            webpush=messaging.WebpushConfig(
                headers={"Urgency": "high"},
                notification=messaging.WebpushNotification(tag=collapse_id) if show else None,
            ),
        )


def push_data(payload: NotificationPayload, *, content_minimal: bool) -> dict[str, str]:
    """The FCM data map: string values only, the notification's own data as one JSON string."""
    minimal = {"notification_id": payload["id"], "event": payload["event"]}
    if content_minimal:
        return minimal
    full = {
        **minimal,
        "title": payload["title"],
        "body": payload["body"],
        "priority": payload["priority"],
        "document_id": "" if payload["document_id"] is None else str(payload["document_id"]),
        "created_at": payload["created_at"],
        "expires_at": payload["expires_at"] or "",
        "data": json.dumps(payload["data"], separators=(",", ":"), ensure_ascii=False),
        # What the app may offer on the notification (its buttons); "[]" when none.
        "actions": json.dumps(payload.get("actions", []), separators=(",", ":"), ensure_ascii=False),
    }
    if len(json.dumps(full, ensure_ascii=False).encode()) > FCM_DATA_LIMIT:
        return {**minimal, "truncated": "true"}
    return full


def build_message(payload: NotificationPayload, token: str, *, content_minimal: bool) -> messaging.Message:
    """One FCM message for one device token."""
    data = push_data(payload, content_minimal=content_minimal)
    show = not content_minimal
    urgent = payload["priority"] in ("high", "urgent")
    ttl = _seconds_left(payload["expires_at"])
    collapse_id = payload["id"]
    apns_headers = {
        "apns-collapse-id": collapse_id,
        "apns-priority": "10" if show and payload["priority"] != "low" else "5",
    }
    if payload["expires_at"]:
        apns_headers["apns-expiration"] = str(int(datetime.fromisoformat(payload["expires_at"]).timestamp()))
    webpush_headers = {"Urgency": "high" if urgent else "normal"}
    if ttl is not None:
        webpush_headers["TTL"] = str(int(ttl))
    # Registration tokens are what apps hold; firebase-admin 7.5 deprecates `token` in
    # favour of installation ids (`fid`), which our clients do not register.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(
            token=token,
            data=data,
            notification=messaging.Notification(title=payload["title"], body=payload["body"][:500]) if show else None,
            android=messaging.AndroidConfig(
                priority="high" if urgent or not show else "normal",
                ttl=ttl,
                notification=messaging.AndroidNotification(tag=collapse_id) if show else None,
            ),
            apns=messaging.APNSConfig(
                headers=apns_headers,
                payload=None if show else messaging.APNSPayload(aps=messaging.Aps(content_available=True)),
            ),
            webpush=messaging.WebpushConfig(
                headers=webpush_headers,
                notification=messaging.WebpushNotification(tag=collapse_id) if show else None,
            ),
        )


class LogBackend:
    """Contacts nothing: logs the push and answers `simulated`, so nobody mistakes it for a delivery."""

    name = "log"

    def send(self, *, payload: NotificationPayload, devices: Sequence[Device]) -> list[PushResult]:
        logger.info(
            "simulated push of %s (%s) to %d device(s); set FCM_CREDENTIALS_FILE for real pushes",
            payload["id"],
            payload["event"],
            len(devices),
        )
        return self._simulated(devices)

    def send_resolution(
        self, *, payload: NotificationPayload, resolved: ResolvedNotification, devices: Sequence[Device]
    ) -> list[PushResult]:
        logger.info(
            "simulated resolution push of %s (%s) to %d device(s)", payload["id"], resolved["resolution"], len(devices)
        )
        return self._simulated(devices)

    @staticmethod
    def _simulated(devices: Sequence[Device]) -> list[PushResult]:
        return [
            PushResult(device.pk, Outcome.SIMULATED, "log push backend: no device was contacted") for device in devices
        ]

    def close(self) -> None:
        pass


class FcmBackend:
    """firebase-admin's synchronous `send_each` (its async client is bound to one event loop)."""

    name = "fcm"

    def __init__(self, *, credentials_file: str = "", timeout: float = 10) -> None:
        # A service-account file; otherwise Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS).
        credential = credentials.Certificate(credentials_file) if credentials_file else credentials.ApplicationDefault()
        # A fresh app per backend: firebase-admin caches its messaging service (and URL) per app.
        self._app = firebase_admin.initialize_app(
            credential, options={"httpTimeout": timeout}, name=f"notifyhub-{uuid.uuid4().hex}"
        )
        _use_short_http_retries(self._app)

    def send(self, *, payload: NotificationPayload, devices: Sequence[Device]) -> list[PushResult]:
        content_minimal = settings.NOTIFY_PUSH_CONTENT_MINIMAL
        return self._send_each(devices, lambda token: build_message(payload, token, content_minimal=content_minimal))

    def send_resolution(
        self, *, payload: NotificationPayload, resolved: ResolvedNotification, devices: Sequence[Device]
    ) -> list[PushResult]:
        content_minimal = settings.NOTIFY_PUSH_CONTENT_MINIMAL
        return self._send_each(
            devices, lambda token: build_resolution_message(payload, resolved, token, content_minimal=content_minimal)
        )

    def _send_each(
        self, devices: Sequence[Device], message_for: Callable[[str], messaging.Message]
    ) -> list[PushResult]:
        """One message per device (`message_for` its token), in batches of FCM_BATCH_LIMIT, one result each."""
        results: list[PushResult] = []
        for start in range(0, len(devices), FCM_BATCH_LIMIT):
            batch = devices[start : start + FCM_BATCH_LIMIT]
            try:
                messages = [message_for(device.token) for device in batch]
                response = messaging.send_each(messages, app=self._app)
            except ValueError as error:  # a message firebase-admin refuses to encode: permanent
                results.extend(
                    PushResult(device.pk, Outcome.REJECTED, f"INVALID_MESSAGE: {error}", "INVALID_MESSAGE")
                    for device in batch
                )
                continue
            except exceptions.FirebaseError as error:  # the whole call failed, e.g. no OAuth token
                results.extend(_result_for_error(device.pk, error) for device in batch)
                continue
            for device, sent in zip(batch, response.responses, strict=True):
                if sent.success:
                    results.append(PushResult(device.pk, Outcome.ACCEPTED))
                else:
                    results.append(_result_for_error(device.pk, sent.exception))
        return results

    def close(self) -> None:
        firebase_admin.delete_app(self._app)


# firebase-admin names FCM's specific error codes by class; the rest carry the canonical code.
FCM_ERROR_CODES = {
    messaging.UnregisteredError: "UNREGISTERED",
    messaging.SenderIdMismatchError: "SENDER_ID_MISMATCH",
    messaging.QuotaExceededError: "QUOTA_EXCEEDED",
    messaging.ThirdPartyAuthError: "THIRD_PARTY_AUTH_ERROR",
}


# firebase-admin retries 500/503 four times, and 429/503 for as long as Retry-After says, sleeping in
# the worker (minutes, past the task's time limit). Keep quick retries for blips; a long wait goes to
# the database instead (next_attempt_at, see services/pushes.py), where Retry-After is honoured.
SDK_HTTP_RETRY = Retry(
    connect=1,
    read=1,
    status=2,
    status_forcelist=[500, 503],
    backoff_factor=0.5,
    raise_on_status=False,
    allowed_methods=None,
    respect_retry_after_header=False,
)


def _use_short_http_retries(app: firebase_admin.App) -> None:
    # There is no option for this: replace the adapters of the messaging service's HTTP session
    # (test_push.py has a canary that this still takes effect).
    session = messaging._get_messaging_service(app)._client.session
    for prefix in list(session.adapters):
        session.mount(prefix, HTTPAdapter(pool_connections=10, pool_maxsize=100, max_retries=SDK_HTTP_RETRY))


def _result_for_error(device_id: int, error: exceptions.FirebaseError) -> PushResult:
    code = FCM_ERROR_CODES.get(type(error), error.code)
    message = f"{code}: {error}"
    if isinstance(error, DEVICE_GONE_ERRORS):
        return PushResult(device_id, Outcome.DEVICE_GONE, message, code)
    if isinstance(error, TEMPORARY_ERRORS):
        return PushResult(device_id, Outcome.RETRY, message, code, retry_after=_retry_after(error))
    return PushResult(device_id, Outcome.REJECTED, message, code)


def _retry_after(error: exceptions.FirebaseError) -> float | None:
    """FCM's Retry-After header (seconds or an HTTP date), if the response had one."""
    response = error.http_response
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (email.utils.parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _seconds_left(expires_at: str | None) -> float | None:
    if not expires_at:
        return None
    return max(0.0, (datetime.fromisoformat(expires_at) - timezone.now()).total_seconds())


# --- The configured backend, built once per process ---------------------------------------
_backend: PushBackend | None = None
_backend_lock = threading.Lock()
BACKEND_SETTINGS = {"NOTIFY_PUSH_BACKEND", "FCM_CREDENTIALS_FILE", "GOOGLE_APPLICATION_CREDENTIALS", "FCM_TIMEOUT"}


def get_backend() -> PushBackend:
    global _backend
    with _backend_lock:
        if _backend is None:
            if settings.NOTIFY_PUSH_BACKEND == "fcm":
                _backend = FcmBackend(credentials_file=settings.FCM_CREDENTIALS_FILE, timeout=settings.FCM_TIMEOUT)
            else:
                _backend = LogBackend()
        return _backend


def reset_backend() -> None:
    """Forget the backend (and delete its Firebase app); the next push builds it from the settings again."""
    global _backend
    with _backend_lock:
        if _backend is not None:
            _backend.close()
        _backend = None


@receiver(setting_changed)
def _reset_backend_on_settings_change(*, setting: str, **kwargs) -> None:
    if setting in BACKEND_SETTINGS:
        reset_backend()
