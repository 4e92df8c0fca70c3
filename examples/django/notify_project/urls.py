"""The example's pages: log in, a page that watches the frames, the view
that queues the Celery task and the view that mints a herald token.
herald serves the WebSockets and the publish API itself."""
from django.contrib.auth import views as auth_views
from django.urls import path

from notifications import views

urlpatterns = [
    path("", views.index, name="index"),
    path("notify/", views.notify, name="notify"),
    path("token/", views.token, name="token"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
