"""The soak's users, departments and publisher (with its publishing scope), in the soak's own database.

Runs in the driver after `django.setup()` with the soak's DATABASE_URL. The
database is created if missing, migrated and emptied at every start (like the
bench's), so every run starts with no backlog to replay.

Every user is one client of one kind (`bench.soak.options.KINDS`), known by its
*key* (its index). Users that may be away from their socket (never-acking,
flaky and offline ones) get an FCM device, registered later through the real
API (`register_devices` in `bench.soak.publisher`); the always-connected ones
(native, signalr) have none, so a delivery of theirs can only end acknowledged
(or failed, which the soak counts against the hub).
"""

import random
from dataclasses import dataclass

USERNAME_PREFIX = "soak-user-"
PUBLISHER_USERNAME = "soak-publisher"
SOAK_EVENT = "SoakNotice"  # the one event name the soak's publisher publishes (and its scope allows)
DEPARTMENT_PREFIX = "soak-dept-"
# Kinds whose client never leaves and acknowledges everything: their deliveries must never fail.
ALWAYS_CONNECTED = ("native", "signalr")
ACKING = ("native", "signalr", "flaky")
WITH_DEVICE = ("silent", "flaky", "offline")


@dataclass(frozen=True)
class SoakUser:
    key: int
    user_id: int
    kind: str
    protocol: str | None  # "native", "signalr", or None for offline users
    token: str
    device_token: str | None

    @property
    def always_connected(self) -> bool:
        return self.kind in ALWAYS_CONNECTED

    @property
    def acks(self) -> bool:
        return self.kind in ACKING


@dataclass(frozen=True)
class Population:
    users: list[SoakUser]  # index = key
    departments: dict[int, list[int]]  # department id -> member keys
    publisher_token: str

    def keys_of(self, kind: str) -> list[int]:
        return [user.key for user in self.users if user.kind == kind]

    def key_of_user_id(self) -> dict[int, int]:
        return {user.user_id: user.key for user in self.users}


def assign_kinds(clients: int, mix: dict[str, int], rng: random.Random) -> list[str]:
    """`clients` kinds in the proportions of `mix`, shuffled (so every client process gets some of each)."""
    total = sum(mix.values())
    counts = {kind: clients * weight // total for kind, weight in mix.items()}
    for kind in sorted(mix, key=mix.get, reverse=True)[: clients - sum(counts.values())]:
        counts[kind] += 1  # the remainder goes to the heaviest kinds
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    rng.shuffle(kinds)
    return kinds


def protocols_for(kinds: list[str]) -> list[str | None]:
    """native and signalr speak their own; silent and flaky clients alternate between the two."""
    alternating: dict[str, int] = {}
    protocols = []
    for kind in kinds:
        if kind in ("native", "signalr"):
            protocols.append(kind)
        elif kind == "offline":
            protocols.append(None)
        else:
            alternating[kind] = alternating.get(kind, 0) + 1
            protocols.append("native" if alternating[kind] % 2 else "signalr")
    return protocols


def create_population(
    *, clients: int, mix: dict[str, int], department_size: tuple[int, int], run_id: str, rng: random.Random
) -> Population:
    """The users (one per client), departments of `department_size` members drawn from all of them, a publisher.

    Needs Django set up (the rest of this module does not: client processes and tests import it without).
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from bench.fixtures import access_token
    from notifications.models import PublisherScope
    from workflow.models import Department, DepartmentMembership

    User = get_user_model()
    kinds = assign_kinds(clients, mix, rng)
    User.objects.bulk_create(
        [User(username=f"{USERNAME_PREFIX}{key:05d}", password="!unusable") for key in range(clients)],  # noqa: S106
        batch_size=2_000,
    )
    user_ids = list(
        User.objects.filter(username__startswith=USERNAME_PREFIX).order_by("username").values_list("pk", flat=True)
    )
    users = [
        SoakUser(
            key=key,
            user_id=user_id,
            kind=kind,
            protocol=protocol,
            token=access_token(user_id),
            device_token=f"soak-fcm-{run_id}-{key}" if kind in WITH_DEVICE else None,
        )
        for key, (user_id, kind, protocol) in enumerate(zip(user_ids, kinds, protocols_for(kinds), strict=True))
    ]
    departments = {}
    low, high = department_size
    for index in range(max(1, clients // 50)):
        members = rng.sample(range(clients), min(clients, rng.randint(low, high)))
        department = Department.objects.create(code=f"{DEPARTMENT_PREFIX}{index}", name=f"Soak department {index}")
        DepartmentMembership.objects.bulk_create(
            [DepartmentMembership(department=department, user_id=users[key].user_id) for key in members]
        )
        departments[department.pk] = sorted(members)
    publisher = User.objects.create(username=PUBLISHER_USERNAME, password="!unusable")  # noqa: S106
    publisher.user_permissions.add(
        Permission.objects.get(codename="publish_notification", content_type__app_label="notifications")
    )
    PublisherScope.objects.create(publisher=publisher, all_recipients=True, events=[SOAK_EVENT])
    return Population(users=users, departments=departments, publisher_token=access_token(publisher.pk))
