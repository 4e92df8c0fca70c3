"""Settings of the herald example: a Django project whose views queue a
Celery task that publishes through channels_redis, while herald (not
Daphne's WebSocket side) holds the WebSockets. Only what the example needs.
README.md beside manage.py runs it from a fresh machine.

Environment (for tests and deployments):
  HERALD_EXAMPLE_REDIS   host:port of the channel layer's Redis (127.0.0.1:6379)
  CELERY_BROKER_URL      Celery broker (redis://<same Redis>/1)
  HERALD_EXAMPLE_DB      the SQLite file of users and sessions (db.sqlite3 here)
  HERALD_JWT_SECRET      the secret herald checks WebSocket tokens with (the
                         same variable sets herald's --jwt-secret)
  HERALD_WS_URL          where browsers reach herald (ws://127.0.0.1:8000)
"""
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "notifications",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]
# Users and sessions only; the notifications themselves live in herald.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("HERALD_EXAMPLE_DB", os.path.join(BASE_DIR, "db.sqlite3")),
    },
}
ROOT_URLCONF = "notify_project.urls"
ASGI_APPLICATION = "notify_project.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_REDIRECT_URL = "/"

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

# herald: the tokens that the /token/ view mints are checked by
# `herald serve --jwt-secret` (or HERALD_JWT_SECRET) with the same secret.
HERALD_JWT_SECRET = os.environ.get("HERALD_JWT_SECRET", "")
HERALD_WS_URL = os.environ.get("HERALD_WS_URL", "ws://127.0.0.1:8000")
HERALD_TOKEN_TTL = 3600
