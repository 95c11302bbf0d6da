"""One websocket per project. Membership is checked at connect and again whenever it changes."""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from backend.core.events import project_group, user_group
from backend.projects.models import Membership


@database_sync_to_async
def _is_member(user, project_id: int) -> bool:
    return bool(user and user.is_authenticated and Membership.objects.filter(user=user, project_id=project_id).exists())


class ProjectConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        self.user = self.scope.get("user")
        if not await _is_member(self.user, self.project_id):
            await self.close(code=4403)
            return
        self.groups_joined = [project_group(self.project_id), user_group(self.user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "project": self.project_id})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def event_message(self, event):
        payload = event["payload"]
        if payload.get("type") == "membership.changed":
            if payload.get("project") == self.project_id and not await _is_member(self.user, self.project_id):
                await self.send_json({"type": "access.revoked", "project": self.project_id})
                await self.close(code=4403)
            return
        await self.send_json(payload)
