"""`celery` with firebase-admin sending to the fake FCM server.

`python -m tests.support.celery_with_fake_fcm -A notifyhub worker ...` is the
same command line as the Procfile's; the only difference is the one class
attribute the tests patch in-process too (FAKE_FCM_URL: firebase-admin has no setting for
its endpoint, so the class attribute holding the FCM URL is pointed at the fake server).
"""

import os
import sys

from celery.__main__ import main
from firebase_admin import messaging

if __name__ == "__main__":
    messaging._MessagingService.FCM_URL = os.environ["FAKE_FCM_URL"]
    sys.exit(main())
