from django.contrib import admin

from .models import Image


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "original_name", "status", "width", "height", "created_at"]
    list_filter = ["status", "project"]
    search_fields = ["original_name", "sha256"]
    readonly_fields = ["sha256", "width", "height", "content_type", "size_bytes", "file", "version"]
