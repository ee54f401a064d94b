"""The operations console: the admin's pages for delivery health and "why wasn't U notified?".

Staff-only pages served by the admin site (`notifyhub.admin.NotifyHubAdminSite.get_urls` mounts `urls.py` under
`/admin/console/`, each view wrapped in `admin_view`): the dashboard, presence, and explanations. The views are
thin: numbers come from selectors, sentences from `notifications.explain`, times through `console.times`.
"""
