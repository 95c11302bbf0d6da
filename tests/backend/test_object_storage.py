"""Media on object storage (an S3 server started here: moto in server mode, real HTTP) and on disk.

The same flows run against both backends through the real API: upload, read back through the
membership-checked file endpoint, export and download, the worker's read path, import, delete.
"""
from __future__ import annotations

import asyncio
import io
import json
import zipfile

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from backend.config.storage_url import storages_from_url
from backend.exchange import services as exchange
from backend.gallery.models import GalleryImage
from backend.images.models import Image

from .factories import make_project, make_user, zip_bytes

BUCKET = "razmetka-test"
KEY_ID, SECRET = "test-key", "test/secret+1"  # a secret that needs percent-encoding in the URL


# --------------------------------------------------------------------------- STORAGE_URL parsing


def test_no_url_is_local_disk_under_media_root():
    assert storages_from_url("")["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert storages_from_url(None)["staticfiles"]["BACKEND"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_file_url_is_local_disk_at_that_path():
    assert storages_from_url("file:///srv/razmetka/media")["default"]["OPTIONS"] == {"location": "/srv/razmetka/media"}


def test_s3_url_with_endpoint_region_prefix_and_credentials():
    options = storages_from_url(
        "s3://AKIA123:se%2Fcr%2Bet%40x@razmetka-media/prod/media/?endpoint_url=http://minio:9000&region=eu-west-1"
    )["default"]["OPTIONS"]
    assert options["bucket_name"] == "razmetka-media"
    assert options["location"] == "prod/media"
    assert options["access_key"] == "AKIA123" and options["secret_key"] == "se/cr+et@x"
    assert options["endpoint_url"] == "http://minio:9000" and options["region_name"] == "eu-west-1"
    # Path style by default with a custom endpoint: `razmetka-media.minio` would not resolve.
    assert options["addressing_style"] == "path"
    assert options["default_acl"] is None and options["file_overwrite"] is False


def test_s3_url_without_credentials_leaves_them_to_boto3():
    options = storages_from_url("s3://razmetka-media")["default"]["OPTIONS"]
    assert "access_key" not in options and "secret_key" not in options
    assert "endpoint_url" not in options and "addressing_style" not in options  # plain AWS S3
    assert storages_from_url("s3://media?addressing_style=virtual&verify=false")["default"]["OPTIONS"]["verify"] is False


@pytest.mark.parametrize(
    "url,message",
    [
        ("http://minio:9000/bucket", "unsupported scheme http://"),
        ("minio:9000", "unsupported scheme"),
        ("s3://", "no bucket name"),
        ("s3://Media", "'Media' is not a valid bucket name"),
        ("s3://my_bucket", "not a valid bucket name"),
        ("s3://ab", "not a valid bucket name"),
        ("s3://minio:9000", "not host:port; put the server in ?endpoint_url="),
        ("s3://key@media", "need both parts"),
        ("s3://media?endpoint=http://minio:9000", "unknown option 'endpoint'"),
        ("s3://media?region=us-east-1&region=eu-west-1", "option 'region' is given twice"),
        ("s3://media?endpoint_url=minio:9000", "endpoint_url must be an http(s)://host[:port] URL"),
        ("s3://media?addressing_style=dns", "addressing_style must be one of"),
        ("s3://media?verify=maybe", "verify must be true or false"),
        ("s3://media?region=US%20East", "is not a region name"),
        ("s3://media/a/../b", "may not contain '..'"),
        ("file://relative/path", "absolute path"),
    ],
)
def test_bad_urls_say_what_is_wrong(url, message):
    with pytest.raises(ImproperlyConfigured) as err:
        storages_from_url(url)
    assert message in str(err.value)
    assert str(err.value).startswith("STORAGE_URL: ") and "docs/deploy.md" in str(err.value)


def test_a_secret_in_a_bad_url_is_not_echoed():
    with pytest.raises(ImproperlyConfigured) as err:
        storages_from_url("s3://key:hunter2@media?nope=1")
    assert "hunter2" not in str(err.value)


# --------------------------------------------------------------------------- the two backends


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture(params=["s3", "disk"])
def backend(request, settings, tmp_path):
    """Point STORAGES at the S3 server or a fresh directory, as STORAGE_URL would at start-up.
    Yields a function telling whether a stored name exists, asked of the backend itself."""
    if request.param == "s3":
        endpoint, client = request.getfixturevalue("s3_server")
        prefix = f"run-{request.node.name.replace('[', '-').rstrip(']')}"
        settings.STORAGES = storages_from_url(
            f"s3://{KEY_ID}:test%2Fsecret%2B1@{BUCKET}/{prefix}?endpoint_url={endpoint}&region=us-east-1"
        )

        def exists(name: str) -> bool:
            try:
                client.head_object(Bucket=BUCKET, Key=f"{prefix}/{name}")
                return True
            except ClientError:
                return False
    else:
        settings.STORAGES = storages_from_url(f"file://{tmp_path}")

        def exists(name: str) -> bool:
            return (tmp_path / name).is_file()

    exists.kind = request.param
    return exists


def png(width=64, height=48, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def team(db, client_for):
    owner, outsider = make_user("owner"), make_user("outsider")
    project = make_project(owner)
    return project, client_for(owner), client_for(outsider)


def test_storage_settings_reach_default_storage(backend):
    from django.core.files.storage import storages

    expected = "S3Storage" if backend.kind == "s3" else "FileSystemStorage"
    assert type(storages["default"]).__name__ == expected


def test_upload_read_export_delete_through_the_api(backend, team, django_capture_on_commit_callbacks):
    project, owner, outsider = team
    data = png(40, 30, (1, 2, 3))
    response = owner.post(f"/api/projects/{project.pk}/images/",
                          {"files": [SimpleUploadedFile("photo.png", data)]}, format="multipart")
    assert response.status_code == 201, response.content
    created = response.json()["created"][0]
    image = Image.objects.get(pk=created["id"])
    assert backend(image.file.name), "the image is not in the configured storage"

    # Read back through the membership-checked endpoint: streamed, complete, with its length.
    got = owner.get(created["file_url"])
    assert got.status_code == 200
    assert got["Content-Type"] == "image/png" and got["Content-Length"] == str(len(data))
    assert b"".join(got.streaming_content) == data
    assert outsider.get(created["file_url"]).status_code in (403, 404)

    # Export with the image inside, written by the worker code, downloaded through the API.
    response = owner.post(f"/api/projects/{project.pk}/exports/",
                          {"format": "coco", "include_images": True, "include_empty_images": True}, format="json")
    assert response.status_code == 202, response.content
    job = exchange.run_export(job_id=response.json()["id"])
    assert job.status == "done", job.error
    assert job.result_file.startswith(f"exports/{project.pk}/") and backend(job.result_file)
    download = owner.get(f"/api/projects/{project.pk}/exports/{job.pk}/download/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
    body = b"".join(download.streaming_content)
    assert len(body) == job.result_size == int(download["Content-Length"])
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert data in [archive.read(n) for n in archive.namelist() if n.startswith("images/")]
    assert outsider.get(f"/api/projects/{project.pk}/exports/{job.pk}/download/").status_code in (403, 404)

    # Delete: the row goes, and (after commit) the object with it.
    names = [n for n in (image.file.name, getattr(image, "thumbnail", "")) if n]
    with django_capture_on_commit_callbacks(execute=True):
        gone = owner.delete(f"/api/projects/{project.pk}/images/{image.pk}/?version={image.version}")
    assert gone.status_code == 204, gone.content
    assert not Image.objects.filter(pk=image.pk).exists()
    assert not any(backend(n) for n in names), "the deleted image's files are still stored"


def test_a_missing_object_is_a_clear_404(backend, team):
    project, owner, _ = team
    response = owner.post(f"/api/projects/{project.pk}/images/",
                          {"files": [SimpleUploadedFile("a.png", png())]}, format="multipart")
    image = Image.objects.get(pk=response.json()["created"][0]["id"])
    default_storage.delete(image.file.name)
    got = owner.get(response.json()["created"][0]["file_url"])
    assert got.status_code == 404
    assert "missing from storage" in got.json()["detail"]


def test_worker_reads_images_and_exemplars_from_storage(backend, team):
    """What a gpu worker on another host does: read pixels by stored name, never by local path."""
    from backend.jobs.engine import read_rgb

    project, owner, _ = team
    response = owner.post(f"/api/projects/{project.pk}/images/",
                          {"files": [SimpleUploadedFile("a.png", png(20, 10, (9, 8, 7)))]}, format="multipart")
    image = Image.objects.get(pk=response.json()["created"][0]["id"])
    pixels = read_rgb(image.file.name)
    assert pixels.shape == (10, 20, 3) and (pixels == np.array([9, 8, 7])).all()

    response = owner.post(f"/api/projects/{project.pk}/gallery/",
                          {"files": [SimpleUploadedFile("set.zip", zip_bytes({"hammer/ex.png": png(8, 8, (5, 6, 7))}))]},
                          format="multipart")
    assert response.status_code == 201, response.content
    exemplar = GalleryImage.objects.get(pk=response.json()["created"][0]["id"])
    assert backend(exemplar.file.name)
    assert (read_rgb(exemplar.file.name) == np.array([5, 6, 7])).all()
    got = owner.get(f"/api/projects/{project.pk}/gallery/{exemplar.pk}/file/")
    assert got.status_code == 200 and PILImage.open(io.BytesIO(b"".join(got.streaming_content))).size == (8, 8)


def test_import_upload_is_stored_read_by_the_worker_and_removed(backend, team):
    project, owner, _ = team
    response = owner.post(f"/api/projects/{project.pk}/images/",
                          {"files": [SimpleUploadedFile("img1.png", png(50, 40))]}, format="multipart")
    image = Image.objects.get(pk=response.json()["created"][0]["id"])
    doc = {
        "images": [{"id": 1, "file_name": image.original_name, "width": 50, "height": 40}],
        "categories": [{"id": 1, "name": "hammer"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 5], "area": 50, "iscrowd": 0}],
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:  # a zip: the worker seeks in it, which S3 objects must allow
        zf.writestr("annotations/instances.json", json.dumps(doc))
    started = exchange.start_import(project=project, user=image.uploaded_by, format="coco",
                                    upload=SimpleUploadedFile("coco.zip", out.getvalue()), create_missing_classes=True)
    stored = started.upload_file
    assert backend(stored), "the import upload is not in the configured storage"
    job = exchange.run_import(job_id=started.pk)
    assert job.status == "done", (job.errors, job.result)
    assert image.annotations.count() == 1
    assert not backend(stored)


def test_streaming_under_asgi_sends_blocks_not_the_whole_file(backend, team):
    """Django's default ASGI path reads a sync file whole before the first byte; ours streams."""
    from backend.core.files import BLOCK, private_file_response, store_file

    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, BLOCK * 3 + 17, dtype=np.uint8).tobytes()
    name = store_file("scratch", "bin", data)

    async def consume():
        response = private_file_response(name, "application/octet-stream", "x.bin")
        parts = response.__aiter__()
        first = await parts.__anext__()
        read_before_first_send = response.file_to_stream.tell()
        rest = [part async for part in parts]
        response.close()
        return read_before_first_send, [first, *rest]

    read_before_first_send, parts = asyncio.run(consume())
    assert read_before_first_send <= BLOCK, "the whole file was read before the first block went out"
    assert b"".join(parts) == data
    assert len(parts) == 4 and max(len(p) for p in parts) == BLOCK
    default_storage.delete(name)


def test_ensure_bucket_creates_it_once(s3_server):
    from backend.config.storage_url import ensure_bucket

    endpoint, client = s3_server
    url = f"s3://{KEY_ID}:test%2Fsecret%2B1@fresh-bucket/media?endpoint_url={endpoint}&region=us-east-1"
    assert ensure_bucket(url) is True
    assert ensure_bucket(url) is False  # a restart finds it there
    assert "fresh-bucket" in [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert ensure_bucket("") is False  # local disk: nothing to create


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_worker_on_another_host_works_through_object_storage(s3_server, settings, client_for, tmp_path,
                                                               tiny_models_config):
    """A Celery worker process configured only by STORAGE_URL in its environment, with an empty
    MEDIA_ROOT of its own (another host's disk): it pre-annotates images and exemplars it reads from
    S3 (the gpu queue, tiny models) and writes an export there (the cpu queue)."""
    import time

    from backend.annotations.models import Annotation
    from backend.exchange.models import ExportJob
    from backend.jobs.models import PrelabelJob

    from ..worker import start_worker, stop_worker
    from ml.tiny import synthetic_image

    from .factories import make_class

    def synthetic_png(seed: int) -> bytes:  # pictures the tiny detector finds things in
        out = io.BytesIO()
        PILImage.fromarray(synthetic_image(seed)).save(out, format="PNG")
        return out.getvalue()

    endpoint, client = s3_server
    url = f"s3://{KEY_ID}:test%2Fsecret%2B1@{BUCKET}/remote?endpoint_url={endpoint}&region=us-east-1"
    settings.STORAGES = storages_from_url(url)
    # Its own queues, so no other test worker of this run can take the tasks.
    prefix = f"{settings.QUEUE_PREFIX}remote-"
    settings.QUEUE_CPU, settings.QUEUE_GPU = f"{prefix}cpu", f"{prefix}gpu"
    elsewhere = tmp_path / "other-host-media"
    elsewhere.mkdir()
    worker = start_worker(queues=[settings.QUEUE_CPU, settings.QUEUE_GPU], name="s3", extra_env={
        "STORAGE_URL": url, "MEDIA_ROOT": str(elsewhere), "RAZMETKA_QUEUE_PREFIX": prefix,
        "RAZMETKA_ML_CONFIG": tiny_models_config,
    })

    def wait(model, pk):
        deadline = time.monotonic() + 180
        while (job := model.objects.get(pk=pk)).status not in {"done", "failed", "cancelled"}:
            assert time.monotonic() < deadline, f"{model.__name__} still {job.status}"
            time.sleep(0.2)
        return job

    try:
        owner = make_user("remote-owner")
        project = make_project(owner, box_threshold=0.0, text_threshold=0.0, unknown_threshold=0.0)
        hammer = make_class(project, "hammer")
        api = client_for(owner)
        response = api.post(f"/api/projects/{project.pk}/gallery/", {
            "files": [SimpleUploadedFile(f"h{s}.png", synthetic_png(s)) for s in (101, 102)], "label_class": hammer.pk,
        }, format="multipart")
        assert response.status_code == 201, response.content
        data = synthetic_png(1)
        response = api.post(f"/api/projects/{project.pk}/images/",
                            {"files": [SimpleUploadedFile("far.png", data)]}, format="multipart")
        assert response.status_code == 201, response.content

        response = api.post(f"/api/projects/{project.pk}/jobs/", {"images": "new"}, format="json")
        assert response.status_code == 201, response.content
        job = wait(PrelabelJob, response.json()["id"])
        assert job.status == "done" and job.failed == 0, job.error
        assert Annotation.objects.filter(project=project, source="model").exists()

        response = api.post(f"/api/projects/{project.pk}/exports/",
                            {"format": "coco", "include_images": True, "include_pending": True}, format="json")
        assert response.status_code == 202, response.content
        job = wait(ExportJob, response.json()["id"])
        assert job.status == "done", job.error
        client.head_object(Bucket=BUCKET, Key=f"remote/{job.result_file}")  # raises when it is not there
        archive = zipfile.ZipFile(io.BytesIO(b"".join(
            api.get(f"/api/projects/{project.pk}/exports/{job.pk}/download/").streaming_content)))
        assert data in [archive.read(n) for n in archive.namelist() if n.startswith("images/")]
        assert not any(elsewhere.iterdir()), "the worker wrote media to its local disk"
    finally:
        stop_worker(worker)
