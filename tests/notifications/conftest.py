"""Fixtures of the delivery tests: a fake FCM server for the real firebase-admin SDK."""

import pytest
from firebase_admin import messaging

from tests.support.fake_fcm import FakeFcm


@pytest.fixture(scope="session")
def fake_fcm_server(tmp_path_factory):
    """One fake FCM server for the session; firebase-admin sends to it instead of Google."""
    server = FakeFcm().start()
    server.credentials_file = server.write_credentials(tmp_path_factory.mktemp("fcm"))
    with pytest.MonkeyPatch.context() as patch:
        # The one attribute firebase-admin builds its send URL from (test_push.py has a canary for it).
        patch.setattr(messaging._MessagingService, "FCM_URL", server.send_url)
        yield server
    server.stop()


@pytest.fixture
def fcm(settings, fake_fcm_server) -> FakeFcm:
    """The fcm push backend, talking to the fake server through a fresh Firebase app."""
    fake_fcm_server.reset()
    settings.NOTIFY_PUSH_BACKEND = "fcm"
    settings.FCM_CREDENTIALS_FILE = str(fake_fcm_server.credentials_file)
    settings.FCM_TIMEOUT = 2
    yield fake_fcm_server
    fake_fcm_server.release()
