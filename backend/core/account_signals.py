"""An account switched off or given a new password outside the API (Django's admin, a shell):
the API refused its requests at once, but its open live sockets kept streaming every project
event, and its image claims kept others out for up to 5 minutes (black-box round 13)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

WATCHED = {"is_active", "password"}


def _before(sender, instance, update_fields=None, **_):
    instance._razmetka_was = None
    if instance.pk is None or (update_fields is not None and not WATCHED & set(update_fields)):
        return  # a new account, or a save of other fields (sign-in's last_login)
    instance._razmetka_was = sender.objects.filter(pk=instance.pk).values_list("is_active", "password").first()


def _after(sender, instance, created=False, **_):
    was = getattr(instance, "_razmetka_was", None)
    if created or was is None:
        return
    switched_off = was[0] and not instance.is_active
    if switched_off or was[1] != instance.password:
        from backend.core import events

        events.signed_out(user_id=instance.pk)  # every socket of theirs closes
    if switched_off:
        from backend.images.claims import release_held
        from backend.images.models import Image

        release_held(Image.objects.filter(claimed_by_id=instance.pk))


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_before, sender=user_model, dispatch_uid="razmetka-account-before")
    post_save.connect(_after, sender=user_model, dispatch_uid="razmetka-account-after")
