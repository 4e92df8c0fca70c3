"""POST /api/groups/<group>/send: group_send the JSON body, answer 202 (as herald)."""
import json

from channels.layers import get_channel_layer
from django.http import JsonResponse


async def group_send(request, group):
    if request.method != "POST":
        return JsonResponse({"error": "method not allowed"}, status=405)
    try:
        body = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "bad JSON"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return JsonResponse({"error": "message needs a string type"}, status=400)
    await get_channel_layer().group_send(group, body)
    return JsonResponse({"group": group}, status=202)
