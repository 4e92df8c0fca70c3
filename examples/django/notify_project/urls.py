"""No HTTP views: herald serves the WebSockets and the publish API."""
urlpatterns = []
