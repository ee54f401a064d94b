"""The console's pages, mounted under /admin/console/ by the admin site (which wraps each in `admin_view`)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
