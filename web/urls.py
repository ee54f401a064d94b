from django.urls import path

from web.views import account, documents, inbox, settings, tasks

app_name = "web"

urlpatterns = [
    path("", account.home, name="home"),
    path("sign-in/", account.SignInView.as_view(), name="sign-in"),
    path("sign-out/", account.SignOutView.as_view(), name="sign-out"),
    path("web/token/", account.WebTokenView.as_view(), name="token"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/read-all/", inbox.mark_all_read, name="read-all"),
    # Any text: the service refuses what is not one of the user's notification ids (a message, not a 404 page).
    path("inbox/<str:notification_id>/read/", inbox.mark_read, name="read"),
    path("inbox/<str:notification_id>/actions/<str:action>/", inbox.perform_action, name="action"),
    path("settings/", settings.settings_page, name="settings"),
    path("tasks/", tasks.tasks, name="tasks"),
    path("tasks/out-of-office/", tasks.out_of_office_create, name="out-of-office"),
    path("tasks/out-of-office/<int:delegation_id>/cancel/", tasks.out_of_office_cancel, name="out-of-office-cancel"),
    path("documents/", documents.documents, name="documents"),
    path("documents/new/", documents.document_new, name="document-new"),
    path("documents/<int:document_id>/", documents.document, name="document"),
    path("documents/<int:document_id>/submit/", documents.document_submit, name="document-submit"),
    path("documents/<int:document_id>/withdraw/", documents.document_withdraw, name="document-withdraw"),
    path("documents/<int:document_id>/approve/", documents.document_approve, name="document-approve"),
    path("documents/<int:document_id>/reject/", documents.document_reject, name="document-reject"),
]
