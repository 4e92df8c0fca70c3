"""Minimal Django project: the reference project's stack (Daphne + Channels +
channels_redis) for bench/compare.  Redis address from BENCH_REDIS_PORT."""
import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
MIDDLEWARE = []
ROOT_URLCONF = "benchsite.urls"
ASGI_APPLICATION = "benchsite.asgi.application"
DATABASES = {}
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": True,
           "handlers": {"err": {"class": "logging.StreamHandler"}},
           "root": {"level": "ERROR", "handlers": ["err"]}}

# As in the reference project (docs/PROTOCOL.md), on the benchmark's own redis-server.
CHANNEL_LAYERS = {
    'default': {
        'BACKEND': 'channels_redis.core.RedisChannelLayer',
        'CONFIG': {
            "hosts": [('127.0.0.1', int(os.environ.get("BENCH_REDIS_PORT", "6379")))],
            "capacity": 1500,
            "expiry": 60,
        },
    },
}
