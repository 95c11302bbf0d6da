"""Fewer round trips per pre-annotation batch: a claim is one UPDATE whatever the batch size, and
a job's gallery is loaded by its first batch only (it is pinned at start). The pipeline is the
real one (tiny random-weight models), run in this process."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.annotations.models import Annotation
from backend.images.models import Image
from backend.images.services import upload_images
from backend.jobs import services, tasks
from backend.jobs.models import ItemStatus, JobStatus, PrelabelJob

from .factories import make_image, make_project, make_user, synthetic_png

pytestmark = pytest.mark.django_db


def _updates_of_items(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "jobs_prelabeljobimage"')]


def _models_fail_on_thin_photos(settings, monkeypatch) -> None:
    """A stand-in for any photo the models fail on: uploads take a 4000x1 photo again (they refuse
    it now: MIN_IMAGE_SIDE) and the detector gets it unpadded, so GroundingDINO's processor raises
    as it did before ml/detector.py framed thin images."""
    settings.MIN_IMAGE_SIDE, settings.MAX_IMAGE_ASPECT = 1, 10**6
    monkeypatch.setattr("ml.detector.frame_for_resize", lambda image, *args: (image, 1.0))


def test_a_claim_is_one_update_for_the_whole_batch():
    owner = make_user("owner")
    project = make_project(owner)
    images = [make_image(project, seed=i) for i in range(8)]
    job = services.start_job(project=project, user=owner, images="all")  # its message goes out on commit: never here
    tired = job.items.get(image=images[0])
    tired.attempts = services.MAX_ATTEMPTS
    tired.save()
    with CaptureQueriesContext(connection) as queries:
        claimed, todo = services.claim_items(job_id=job.pk, image_ids=[im.pk for im in images], owner="w:1:abc")
    assert todo == [im.pk for im in images[1:]]
    # The item that gave up is failed on its own; the seven claimed ones take one statement.
    assert len([sql for sql in _updates_of_items(queries) if "'running'" in sql]) == 1
    for item in job.items.filter(image_id__in=todo):
        assert (item.status, item.attempts, item.lease_owner) == (ItemStatus.RUNNING, 1, "w:1:abc")
        assert item.leased_until > timezone.now()
    tired.refresh_from_db()
    assert tired.status == ItemStatus.FAILED and "gave up" in tired.error
    # Seven items are running now, so the claim does not finish the job.
    assert claimed.status == PrelabelJob.objects.get(pk=job.pk).status == JobStatus.RUNNING


def test_second_batch_of_a_job_reuses_its_gallery_and_the_job_finishes(settings, tiny_models_config):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    owner = make_user("owner")
    project = make_project(owner, prompts=["tool", "hammer"], box_threshold=0.0, text_threshold=0.0)
    files = [SimpleUploadedFile(f"s{i}.png", synthetic_png(i)) for i in range(4)]
    ids = [im.pk for im in upload_images(project=project, user=owner, files=files).created]
    job = services.start_job(project=project, user=owner, images="all")
    with CaptureQueriesContext(connection) as first:
        tasks.run_batch(job.pk, ids[:2])
    with CaptureQueriesContext(connection) as second:
        tasks.run_batch(job.pk, ids[2:])

    def gallery_reads(queries):
        return [q["sql"] for q in queries.captured_queries if '"gallery_' in q["sql"]]

    assert gallery_reads(first), "the first batch loads the pinned gallery"
    assert gallery_reads(second) == []
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert job.processed == 4 and job.failed == 0
    assert Annotation.objects.filter(project=project, job_id=job.pk).exists(), "the tiny pipeline proposed nothing"


@pytest.mark.parametrize("write_every_s, writes", [(60.0, 1), (0.0, 3)])
def test_a_batch_writes_its_chunks_at_once_while_the_models_are_fast(settings, tiny_models_config, write_every_s, writes):
    """One message of 6 images, the models on 2 at a time: fast models (within
    PRELABEL_WRITE_EVERY_S) write the whole batch in one transaction; slow ones write (and report
    progress) after every chunk, as a batch did when it was one chunk."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    settings.PRELABEL_CHUNK_SIZE = 2
    settings.PRELABEL_WRITE_EVERY_S = write_every_s
    owner = make_user("owner")
    project = make_project(owner, prompts=["tool", "hammer"], box_threshold=0.0, text_threshold=0.0)
    files = [SimpleUploadedFile(f"c{i}.png", synthetic_png(10 + i)) for i in range(6)]
    ids = [im.pk for im in upload_images(project=project, user=owner, files=files).created]
    job = services.start_job(project=project, user=owner, images="all")  # its message goes out on commit: never here
    with CaptureQueriesContext(connection) as queries:
        outcome = tasks.run_batch(job.pk, ids)
    counters = [q["sql"] for q in queries.captured_queries
                if q["sql"].startswith('UPDATE "jobs_prelabeljob" SET "processed"')]
    assert len(counters) == writes
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.processed == 6 and job.failed == 0, job.error
    assert outcome["processed"] == 6
    assert outcome["annotations"] == Annotation.objects.filter(project=project, job_id=job.pk).count() > 0
    assert set(job.items.values_list("status", flat=True)) == {ItemStatus.DONE}


def test_a_batch_whose_last_chunk_fails_still_writes_the_chunks_before_it(settings, tiny_models_config, monkeypatch):
    """A 1x4000 photo makes GroundingDINO's processor raise: its chunk fails, and the results the
    batch had computed but not yet written (fast models) are written, not left running."""
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image as PILImage

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    settings.PRELABEL_CHUNK_SIZE = 2
    settings.PRELABEL_WRITE_EVERY_S = 60.0
    _models_fail_on_thin_photos(settings, monkeypatch)
    owner = make_user("owner")
    project = make_project(owner, prompts=["tool", "hammer"], box_threshold=0.0, text_threshold=0.0)
    files = [SimpleUploadedFile(f"c{i}.png", synthetic_png(20 + i)) for i in range(4)]
    for i in range(2):
        thin = io.BytesIO()
        PILImage.new("RGB", (4000, 1), (i, 90, 30)).save(thin, "PNG")
        files.append(SimpleUploadedFile(f"thin{i}.png", thin.getvalue()))
    ids = [im.pk for im in upload_images(project=project, user=owner, files=files).created]
    assert len(ids) == 6
    job = services.start_job(project=project, user=owner, images="all")  # its message goes out on commit: never here
    tasks.run_batch(job.pk, ids)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.processed == 6 and job.failed == 2, job.error
    states = dict(job.items.values_list("image_id", "status"))
    assert [states[i] for i in ids] == [ItemStatus.DONE] * 4 + [ItemStatus.FAILED] * 2
    assert Annotation.objects.filter(project=project, job_id=job.pk, image_id__in=ids[:4]).exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_start_locks_the_project_once_and_opens_no_savepoint():
    """A start took the project lock twice (the gallery version's and its own) and a savepoint for
    the gallery version: three of its twelve statements. The lock is taken once, its row gives the
    gallery counter, and the newest version comes with the live gallery in one statement (that
    starts still wait for each other: test_project_pages_api's concurrent starts)."""
    owner = make_user("owner")
    project = make_project(owner)
    for i in range(3):
        make_image(project, seed=i)
    first = services.start_job(project=project, user=owner, images="all")  # records the first gallery version
    with CaptureQueriesContext(connection) as queries:
        second = services.start_job(project=project, user=owner, images="all")
    sqls = [q["sql"] for q in queries.captured_queries]
    sqls = sqls[sqls.index("BEGIN") + 1:sqls.index("COMMIT")]  # the start's transaction; its batches go out after
    assert sum('FROM "projects_project"' in sql and "FOR UPDATE" in sql for sql in sqls) == 1, sqls
    assert not [sql for sql in sqls if sql.startswith("SAVEPOINT")]
    assert len(sqls) <= 7, sqls
    assert second.number == first.number + 1
    assert second.settings_snapshot["gallery_version_id"] == first.settings_snapshot["gallery_version_id"]


def test_the_next_chunk_is_read_while_the_models_run_on_this_one(settings, tiny_models_config, monkeypatch):
    """Reading and decoding a chunk's photos (~0.1 s each at 12 MP) no longer waits for the models
    on the chunk before it: a reader thread has the next chunk ready. Spied, not replaced: the real
    read and the real tiny pipeline run."""
    import threading
    import time as clock

    from django.core.files.uploadedfile import SimpleUploadedFile

    from backend.jobs.engine import get_pipeline

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    settings.PRELABEL_CHUNK_SIZE = 1
    owner = make_user("owner")
    project = make_project(owner, prompts=["tool", "hammer"], box_threshold=0.0, text_threshold=0.0)
    files = [SimpleUploadedFile(f"r{i}.png", synthetic_png(30 + i)) for i in range(3)]
    ids = [im.pk for im in upload_images(project=project, user=owner, files=files).created]
    job = services.start_job(project=project, user=owner, images="all")  # its message goes out on commit: never here
    reads, runs = {}, []
    real_read, pipeline = tasks.read_rgb, get_pipeline()
    real_annotate = pipeline.annotate

    def read(name):
        started = clock.monotonic()
        pixels = real_read(name)
        reads[name] = (started, clock.monotonic(), threading.current_thread() is threading.main_thread())
        return pixels

    def annotate(images, *args, **kwargs):
        started = clock.monotonic()
        clock.sleep(0.2)  # models slower than a read, as on a real photo: the next read must fit inside
        out = real_annotate(images, *args, **kwargs)
        runs.append((started, clock.monotonic()))
        return out

    monkeypatch.setattr(tasks, "read_rgb", read)
    monkeypatch.setattr(pipeline, "annotate", annotate)
    outcome = tasks.run_batch(job.pk, ids)
    assert outcome["processed"] == 3
    names = [name for name, _ in sorted(Image.objects.filter(pk__in=ids).values_list("file", "pk"), key=lambda r: r[1])]
    assert not any(on_main for _, _, on_main in reads.values()), "read on the task's own thread"
    for index in (1, 2):  # chunk i's file was read (sent off just before) while the models ran on chunk i-1
        _, read_end, _ = reads[names[index]]
        run_start, run_end = runs[index - 1]
        assert run_start < read_end <= run_end, (index, reads, runs)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.processed == 3 and job.failed == 0, job.error


def test_one_photo_the_models_cannot_take_fails_alone_not_its_chunk(settings, tiny_models_config, monkeypatch):
    """A 4000x1 photo makes GroundingDINO's processor raise. It shared a chunk with two good
    photos, and all three failed with its error; now the chunk is tried image by image."""
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image as PILImage

    settings.RAZMETKA_ML_CONFIG = tiny_models_config
    settings.PRELABEL_CHUNK_SIZE = 3
    _models_fail_on_thin_photos(settings, monkeypatch)
    owner = make_user("owner")
    project = make_project(owner, prompts=["tool", "hammer"], box_threshold=0.0, text_threshold=0.0)
    thin = io.BytesIO()
    PILImage.new("RGB", (4000, 1), (9, 90, 30)).save(thin, "PNG")
    files = [SimpleUploadedFile("good0.png", synthetic_png(40)), SimpleUploadedFile("thin.png", thin.getvalue()),
             SimpleUploadedFile("good1.png", synthetic_png(41))]
    ids = [im.pk for im in upload_images(project=project, user=owner, files=files).created]
    job = services.start_job(project=project, user=owner, images="all")  # its message goes out on commit: never here
    outcome = tasks.run_batch(job.pk, ids)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and (job.processed, job.failed) == (3, 1), job.error
    statuses = dict(job.items.values_list("image_id", "status"))
    assert [statuses[i] for i in ids] == [ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.DONE]
    error = job.items.get(image_id=ids[1]).error
    assert error.startswith("the models could not process this image (")
    assert outcome["annotations"] == Annotation.objects.filter(project=project, job_id=job.pk).count() > 0
