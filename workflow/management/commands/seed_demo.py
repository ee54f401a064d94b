"""Create demo departments, users and a document in review; safe to run again."""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from workflow import services
from workflow.models import Department, DepartmentMembership, Document

DEMO_PASSWORD = "notifyhub-demo"  # noqa: S105 - printed for the demo on purpose
DEMO_DOCUMENT_TITLE = "Q3 travel budget"

DEPARTMENTS = [("finance", "Finance"), ("management", "Management"), ("it", "IT")]
# username, first name, last name, departments, is_staff
USERS = [
    ("alice", "Alice", "Requester", ["finance"], False),
    ("bob", "Bob", "Approver", ["finance"], False),
    ("carol", "Carol", "Director", ["management", "finance"], False),
    ("dave", "Dave", "Engineer", ["it"], False),
    ("admin", "Ada", "Admin", ["it"], True),
]
SERVICE_USER = "erp-service"
# What the service user's publishing scope lets it reach: these departments (and their members), these events.
SERVICE_USER_DEPARTMENTS = ["finance", "it"]
SERVICE_USER_EVENTS = ["Invoice*", "erp.*"]


class Command(BaseCommand):
    help = "Create demo departments, users (password printed) and a document awaiting approval. Idempotent."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        User = get_user_model()
        departments = {
            code: Department.objects.get_or_create(code=code, defaults={"name": name})[0] for code, name in DEPARTMENTS
        }
        users = {}
        for username, first_name, last_name, department_codes, is_staff in USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first_name,
                    "last_name": last_name,
                    "email": f"{username}@example.com",
                    "is_staff": is_staff,
                    "is_superuser": is_staff,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            for code in department_codes:
                DepartmentMembership.objects.get_or_create(department=departments[code], user=user)
            users[username] = user

        service_user, created = User.objects.get_or_create(
            username=SERVICE_USER, defaults={"first_name": "ERP", "last_name": "integration"}
        )
        if created:
            service_user.set_password(DEMO_PASSWORD)
            service_user.save(update_fields=["password"])
        service_user.user_permissions.add(
            Permission.objects.get(codename="publish_notification", content_type__app_label="notifications")
        )
        # By name, as the permission above: workflow imports nothing from notifications.
        PublisherScope = apps.get_model("notifications", "PublisherScope")
        scope, created = PublisherScope.objects.get_or_create(
            publisher=service_user,
            defaults={"events": list(SERVICE_USER_EVENTS), "may_attach_documents": True},
        )
        if created:
            scope.departments.set([departments[code] for code in SERVICE_USER_DEPARTMENTS])
        # The event type the ERP publishes, listed so users can choose its push and mute on their settings page.
        EventTypePolicy = apps.get_model("notifications", "EventTypePolicy")
        EventTypePolicy.objects.get_or_create(
            event="InvoiceOverdue", defaults={"description": "An invoice of your department is overdue"}
        )

        if not Document.objects.filter(requester=users["alice"], title=DEMO_DOCUMENT_TITLE).exists():
            document = services.document_create(
                requester=users["alice"],
                department=departments["finance"],
                title=DEMO_DOCUMENT_TITLE,
                description="Flights and hotels for the September customer visits.",
                approvers=[users["bob"], users["carol"]],
            )
            services.document_submit(document=document, submitted_by=users["alice"])

        self.stdout.write(self.style.SUCCESS("Demo data ready. Every demo user's password: " + DEMO_PASSWORD))
        for username, _, _, department_codes, is_staff in USERS:
            role = "staff, superuser" if is_staff else ", ".join(department_codes)
            self.stdout.write(f"  {username:<12} ({role})")
        self.stdout.write(
            f"  {SERVICE_USER:<12} (service user: may publish {', '.join(SERVICE_USER_EVENTS)} "
            f"to {', '.join(SERVICE_USER_DEPARTMENTS)})"
        )
