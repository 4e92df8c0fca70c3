"""The reference project's Celery task (docs/PROTOCOL.md): process a notification, then broadcast its
status to the `notifications` group through the channel layer. herald's
WebSocket clients on /ws/notifications/ receive `message` as JSON."""
from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.utils import timezone


def process_notification(notification_data):
    # Stand-in for real work (sending e-mail, push, ...).
    return {"status": "sent", "id": notification_data["id"]}


@shared_task(bind=True)
def send_notification_task(self, notification_data):
    result = process_notification(notification_data)

    channel_layer = get_channel_layer()
    event = {
        "type": "notification_message",
        "message": {
            "notification_id": notification_data["id"],
            "status": result["status"],
            "timestamp": timezone.now().isoformat(),
        },
    }
    if notification_data.get("title") is not None:
        event["message"]["title"] = notification_data["title"]
    async_to_sync(channel_layer.group_send)("notifications", event)
    # And to the user it is for, when it names one: the group `user_<id>`
    # that herald's /ws/notifications/<id>/ joins.
    user_id = notification_data.get("user_id")
    if user_id is not None:
        async_to_sync(channel_layer.group_send)("user_%s" % user_id, event)
    return result
