"""The example's views. A logged-in user gets a herald token for their own
WebSocket route (/token/), queues the Celery task (/notify/),
and can watch the frames arrive in the browser (/)."""
import base64
import hashlib
import hmac
import json
import time
import uuid

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .tasks import send_notification_task


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(user_id, secret, ttl):
    """An HS256 JWT as herald checks it: claims user_id and sub (the user's
    id, as the path /ws/notifications/<id>/ spells it), iat and exp. The same
    token as `herald token --secret S --user ID --ttl TTL` prints."""
    now = int(time.time())
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"user_id": str(user_id), "sub": str(user_id), "iat": now, "exp": now + ttl}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = ("%s.%s" % (header, payload)).encode()
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return "%s.%s.%s" % (header, payload, _b64url(sig))


def _login_required_json(view):
    """401 as JSON, not a redirect: these views are called by scripts."""
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "log in first (/accounts/login/)"}, status=401)
        return view(request, *args, **kwargs)
    return wrapped


@require_GET
@_login_required_json
def token(request):
    """A herald token for the logged-in user, and the WebSocket URL it opens."""
    if not settings.HERALD_JWT_SECRET:
        return JsonResponse({"error": "HERALD_JWT_SECRET is not set"}, status=503)
    user_id = str(request.user.pk)
    tok = mint_token(user_id, settings.HERALD_JWT_SECRET, settings.HERALD_TOKEN_TTL)
    url = "%s/ws/notifications/%s/?token=%s" % (settings.HERALD_WS_URL.rstrip("/"), user_id, tok)
    return JsonResponse({"user_id": user_id, "token": tok, "url": url,
                         "expires_in": settings.HERALD_TOKEN_TTL})


@require_POST
@_login_required_json
def notify(request):
    """Queue send_notification_task for the logged-in user: body
    {"title": "..."} (JSON or a form). Answers 202 with the id."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"error": "bad JSON"}, status=400)
    else:
        body = request.POST
    title = body.get("title") if isinstance(body, dict) or hasattr(body, "get") else None
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        return JsonResponse({"error": "title: a string of 1..200 characters"}, status=400)
    data = {"id": str(uuid.uuid4()), "title": title, "user_id": str(request.user.pk)}
    send_notification_task.delay(data)
    return JsonResponse({"id": data["id"], "status": "queued"}, status=202)


@require_GET
def index(request):
    """The page that watches the frames (templates/notifications/index.html)."""
    if not request.user.is_authenticated:
        return redirect("login")
    return render(request, "notifications/index.html", {"user": request.user})
