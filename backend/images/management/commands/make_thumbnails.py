"""Make the thumbnails of images stored before thumbnails existed (the API also makes them on
first request; this does them all up front, e.g. after an upgrade)."""
from django.core.management.base import BaseCommand

from backend.images.models import Image
from backend.images.services import ensure_thumbnail


class Command(BaseCommand):
    help = "Make missing image thumbnails."

    def add_arguments(self, parser):
        parser.add_argument("--project", type=int, help="only this project's images")

    def handle(self, *args, project=None, **options):
        images = Image.objects.filter(thumbnail="").order_by("pk")
        if project:
            images = images.filter(project_id=project)
        made = failed = 0
        for image in images.iterator(chunk_size=200):
            try:
                ensure_thumbnail(image)
                made += 1
            except Exception as exc:  # a missing or unreadable file: name it, go on with the rest
                failed += 1
                self.stderr.write(f"image {image.pk} ({image.original_name}): {exc}")
        self.stdout.write(f"{made} thumbnails made, {failed} failed.")
