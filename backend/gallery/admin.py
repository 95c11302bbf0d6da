import io

from django.contrib import admin
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from PIL import Image as PILImage

from .models import GalleryImage, HardNegative


@admin.register(GalleryImage)
class GalleryImageAdmin(admin.ModelAdmin):
    list_display = ["id", "thumbnail", "label_class", "project", "source", "original_name", "created_at", "removed_at"]
    list_filter = ["project", "source", "label_class"]
    readonly_fields = ["thumbnail", "sha256", "width", "height", "content_type", "file"]

    @admin.display(description="thumbnail")
    def thumbnail(self, obj):
        url = reverse("admin:gallery_thumbnail", args=[obj.pk])
        return format_html('<img src="{}" style="max-height:64px;max-width:96px" alt="">', url)

    def get_urls(self):
        # Thumbnails go through the admin site's own staff check, not a public media URL.
        extra = [path("<int:pk>/thumbnail/", self.admin_site.admin_view(self.thumbnail_view), name="gallery_thumbnail")]
        return extra + super().get_urls()

    def thumbnail_view(self, request, pk):
        obj = GalleryImage.objects.filter(pk=pk).first()
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404
        with default_storage.open(obj.file.name, "rb") as fh, PILImage.open(fh) as img:
            img.thumbnail((192, 192))
            out = io.BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=85)
        response = HttpResponse(out.getvalue(), content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=3600"
        return response


@admin.register(HardNegative)
class HardNegativeAdmin(admin.ModelAdmin):
    list_display = ["id", "label_class", "project", "crop", "reviewer", "source_image_id", "created_at", "removed_at"]
    list_filter = ["project"]
    readonly_fields = ["crop", "source_image_id", "source_annotation_id", "learned_event_id"]
