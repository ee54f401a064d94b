"""factory-boy factories for the tests; every test builds its data from these."""

import factory
from django.contrib.auth import get_user_model

from notifications.models import Device, PublisherScope
from workflow.models import Department, DepartmentMembership

TEST_PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    is_active = True

    @factory.post_generation
    def password(user, create, extracted, **kwargs):
        user.set_password(extracted or TEST_PASSWORD)
        if create:
            user.save(update_fields=["password"])


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    code = factory.Sequence(lambda n: f"dept{n}")
    name = factory.LazyAttribute(lambda department: department.code.title())


def add_members(department: Department, *users) -> None:
    DepartmentMembership.objects.bulk_create(
        [DepartmentMembership(department=department, user=user) for user in users], ignore_conflicts=True
    )


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    user = factory.SubFactory(UserFactory)
    token = factory.Sequence(lambda n: f"fcm-token-{n}")
    platform = Device.Platform.ANDROID
    app_install_id = factory.Sequence(lambda n: f"install-{n}")


class PublisherScopeFactory(factory.django.DjangoModelFactory):
    """Unrestricted unless told otherwise: every recipient, any event name, documents."""

    class Meta:
        model = PublisherScope
        skip_postgeneration_save = True

    publisher = factory.SubFactory(UserFactory)
    all_recipients = True
    events = factory.LazyFunction(lambda: ["*"])
    may_attach_documents = True

    @factory.post_generation
    def departments(scope, create, extracted, **kwargs):
        if create and extracted:
            scope.departments.set(extracted)

    @factory.post_generation
    def users(scope, create, extracted, **kwargs):
        if create and extracted:
            scope.users.set(extracted)
