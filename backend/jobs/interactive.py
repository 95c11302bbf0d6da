"""Interactive SAM 2 for the browser: the request waits for the gpu worker, with a deadline.

The worker segments the drawn box and, like a pre-annotation job, embeds the new crop and
matches it against the project's current gallery, so a new object arrives with a proposed class
and its top-k evidence. An empty gallery (or an unsure match) proposes no class at all."""
from __future__ import annotations

from celery import shared_task
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings

from backend.annotations import proposals
from backend.core.errors import DomainError
from backend.core.geometry import validate_box

# A cold gpu worker loads its models and may embed new exemplars first (~10 s alone, more on a
# busy machine); past this the request answers 503 and the task is revoked.
SEGMENT_TIMEOUT_S = 60
TASK_NAME = "jobs.segment_box_match"


class SegmentUnavailable(DomainError):
    status_code = 503
    code = "segment_unavailable"


def segment_box_now(*, image, box: list[float], user=None) -> dict:
    """{mask_rle, bbox, score, label_class, class_name, class_score, class_margin, candidates,
    proposal}: `proposal` is the token that lets the create call attach this evidence
    (annotations.proposals)."""
    x0, y0, x1, y1 = validate_box(box, height=image.height, width=image.width, field="box")
    result = segment_box_match.apply_async(args=[image.pk, [x0, y0, x1, y1]], queue=settings.QUEUE_GPU)
    try:
        answer = result.get(timeout=SEGMENT_TIMEOUT_S, propagate=True)
    except CeleryTimeout:
        result.revoke()
        raise SegmentUnavailable("The segmentation worker did not answer in time; is the gpu worker running?") from None
    except Exception as exc:
        raise SegmentUnavailable(f"Segmentation failed: {exc}") from None
    answer["proposal"] = proposals.remember(
        project_id=image.project_id, image_id=image.pk, user_id=getattr(user, "pk", None), result=answer,
    )
    return answer


@shared_task(name=TASK_NAME)
def segment_box_match(image_id: int, box: list[float]) -> dict:
    """SAM 2 on one box, then embed + match the crop exactly as a boxes job does (same ROI
    margin, same crop, the project's live matcher settings, the newest gallery version)."""
    from backend.gallery.versions import current_version
    from backend.images.models import Image

    from .engine import get_pipeline, read_rgb
    from .gallery_index import classification, ensure_exemplar_embeddings, load_gallery, project_matcher
    from .services import classes_by_id

    pipeline = get_pipeline()
    image = Image.objects.select_related("project").get(pk=image_id)
    project = image.project
    exemplar_ids = current_version(project.pk).exemplar_ids
    ensure_exemplar_embeddings(project_id=project.pk, pipeline=pipeline, exemplar_ids=exemplar_ids)
    gallery = load_gallery(project_id=project.pk, embedder_version=pipeline.embedder_version, exemplar_ids=exemplar_ids)
    detection = pipeline.annotate([read_rgb(image.file.name)], gallery, boxes=[[box]], matcher=project_matcher(project))[0].detections[0]
    fields = classification(detection.match, classes_by_id(project.pk))
    chosen = fields["label_class"]
    x0, y0, x1, y1 = detection.bbox_xyxy
    return {
        "mask_rle": detection.mask_rle,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "score": float(detection.mask_score),
        "label_class": chosen.pk if chosen else None,
        "class_name": chosen.name if chosen else None,
        "class_score": fields["class_score"] if len(gallery) or chosen else None,
        "class_margin": fields["class_margin"] if len(gallery) or chosen else None,
        "candidates": fields["candidates"],
        "gallery_size": len(gallery),
    }
