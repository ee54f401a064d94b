"""The JavaScript client is a static file of the app, and nothing else of clients/js/ is."""

from django.contrib.staticfiles import finders

from tests.support.servers import REPO_ROOT


def test_the_module_is_served_as_notifyhub_js():
    assert finders.find("notifyhub/notifyhub.js") == str(REPO_ROOT / "clients" / "js" / "src" / "notifyhub.js")


def test_nothing_else_of_the_package_is():
    for path in (
        "notifyhub/package.json",
        "notifyhub/test/support.js",
        "notifyhub/README.md",
        "notifyhub/src/notifyhub.js",
    ):
        assert finders.find(path) is None, path
