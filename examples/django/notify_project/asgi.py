"""ASGI entry point for Daphne: Django's HTTP views only. The WebSockets
(/ws/notifications/...) are herald's; Django reaches them through the
channel layer (notifications/tasks.py)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notify_project.settings")
application = get_asgi_application()
