from django.contrib import admin

from .models import Annotation, AnnotationEvent


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "label_class", "source", "class_review", "mask_review", "version"]
    list_filter = ["source", "class_review", "mask_review"]
    exclude = ["embedding"]
    readonly_fields = [f.name for f in Annotation._meta.fields if f.name != "embedding"]


@admin.register(AnnotationEvent)
class AnnotationEventAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "annotation_id", "actor", "action", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False  # the audit trail is append-only

    def has_delete_permission(self, request, obj=None):
        return False
