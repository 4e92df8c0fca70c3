from django.urls import path

from . import views

# No CSRF middleware is installed, so the async view needs no csrf_exempt
# (Django 3.2's csrf_exempt would hide that the view is a coroutine).
urlpatterns = [
    path("api/groups/<str:group>/send", views.group_send),
]
