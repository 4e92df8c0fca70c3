"""Settings of the herald example: a Django project whose Celery tasks
publish through channels_redis, while herald (not Daphne) holds the
WebSockets. Only what the example needs.

Environment (for tests and deployments):
  HERALD_EXAMPLE_REDIS   host:port of the channel layer's Redis (127.0.0.1:6379)
  CELERY_BROKER_URL      Celery broker (redis://<same Redis>/1)
"""
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "channels",
    "notifications",
]
DATABASES = {}  # the example keeps no models
ROOT_URLCONF = "notify_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_redis_host, _, _redis_port = os.environ.get(
    "HERALD_EXAMPLE_REDIS", "127.0.0.1:6379").rpartition(":")

# As in the reference project (docs/PROTOCOL.md): herald reads and writes exactly these keys.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [(_redis_host, int(_redis_port))],
            "capacity": 1500,
            "expiry": 60,
        },
    },
}

CELERY_BROKER_URL = os.environ.get(
    "CELERY_BROKER_URL", "redis://%s:%s/1" % (_redis_host, _redis_port))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
