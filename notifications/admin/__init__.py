"""Admin: what was published, and for every delivery, where it got to and why; who may publish what.

- `evidence.py`: notifications, deliveries, attempts and devices, read-only for everyone (they are the record of
  what happened); the only write is "retry now", which hands open deliveries back to the retry sweep.
- `publish.py`: the notification list's "Add" is a publish form, going through the same service and scope
  checks as the API.
- `scopes.py`: publisher scopes, edited here.
- `preferences.py`: the organisation's defaults per event type, edited here; users' preferences, read-only.
- `actions.py`: publishers' action callbacks (edited here) and the actions recipients performed (view only).
"""

from notifications.admin import actions, evidence, preferences, publish, scopes

__all__ = ["actions", "evidence", "preferences", "publish", "scopes"]
