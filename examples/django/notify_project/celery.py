"""The example's Celery app (broker: Redis, db 1 by default)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notify_project.settings")

app = Celery("notify_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
