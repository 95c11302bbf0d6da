"""Black-box round 13 (`python -m ml`): an unreadable gallery exemplar and a blank --prompt ended
in tracebacks (exit 1); --limit took an Arabic-Indic digit."""
import cv2
import pytest

from ml.cli import main


def _annotate(tiny_dir, images_dir, out, *extra):
    return main(["annotate", "--images", str(images_dir), "--out", str(out),
                 "--config", str(tiny_dir / "config.json"), *extra])


@pytest.fixture
def folder(tmp_path, images):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.png"), images[0][:, :, ::-1])
    return imgs


def test_an_unreadable_gallery_exemplar_is_one_error_line(tiny_dir, folder, tmp_path, capsys):
    gallery = tmp_path / "gal" / "hammer"
    gallery.mkdir(parents=True)
    (gallery / "fake.png").write_text("not an image")
    with pytest.raises(SystemExit) as e:
        _annotate(tiny_dir, folder, tmp_path / "p.json", "--gallery", str(tmp_path / "gal"))
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err, err
    assert err.count("error:") == 1 and "gallery: cannot read image" in err and "fake.png" in err, err


@pytest.mark.parametrize("args,said", [(["--prompt", ""], "a prompt must not be blank"),
                                       (["--prompt", "  "], "a prompt must not be blank"),
                                       (["--limit", "٣"], "must be a positive integer"),
                                       (["--limit", "３"], "must be a positive integer")])
def test_blank_prompts_and_non_ascii_numbers_are_refused(tiny_dir, folder, tmp_path, capsys, args, said):
    with pytest.raises(SystemExit) as e:
        _annotate(tiny_dir, folder, tmp_path / "p.json", *args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and said in err and "Traceback" not in err, err
    assert not (tmp_path / "p.json").exists()


def test_a_path_of_the_wrong_kind_is_named_so_not_called_missing(tiny_dir, folder, tmp_path, capsys):
    """"config file '/dev/null' not found", "segmenter.checkpoint: '<a folder>' not found", "gallery
    folder '<a file>' not found": each exists, it is only the wrong kind."""
    import json

    from ml.config import PipelineConfig
    from ml.errors import ConfigError, ModelLoadError
    from ml.segmenter import Segmenter

    with pytest.raises(ConfigError, match="is a folder, not a file"):
        PipelineConfig.from_file(tmp_path)
    with pytest.raises(ConfigError, match="is not a regular file"):
        PipelineConfig.from_file("/dev/null")
    cfg = PipelineConfig.from_dict(json.loads((tiny_dir / "config.json").read_text()))
    cfg.segmenter.checkpoint = str(tmp_path)
    import torch

    with pytest.raises(ModelLoadError, match="segmenter.checkpoint: .* is a folder, not a file"):
        Segmenter.load(cfg.segmenter, torch.device("cpu"))
    (tmp_path / "g.txt").write_text("x")
    with pytest.raises(SystemExit) as e:
        _annotate(tiny_dir, folder, tmp_path / "p.json", "--gallery", str(tmp_path / "g.txt"))
    assert e.value.code == 2 and "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("args,said", [
    (["--out", "/dev/null"], "--out: '/dev/null' is not a regular file"),
    (["--vis-dir", "/dev/null"], "--vis-dir: '/dev/null' is a file, not a folder"),
])
def test_an_output_that_is_not_a_file_or_folder_is_refused_up_front(tiny_dir, folder, tmp_path, capsys, args, said):
    """Round 14: --out /dev/null wrote its timings.csv beside it, into /dev; --vis-dir /dev/null said
    "File exists"; --images /dev/null said "not found"."""
    out = ["--out", str(tmp_path / "p.json")] if args[0] != "--out" else []
    with pytest.raises(SystemExit) as e:
        main(["annotate", "--images", str(folder), "--config", str(tiny_dir / "config.json"), *out, *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and said in err, err
    with pytest.raises(SystemExit):
        _annotate(tiny_dir, "/dev/null", tmp_path / "p.json")
    assert "--images: folder '/dev/null' is a file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "timings.csv").exists()


def test_a_named_pipe_in_the_gallery_is_passed_over_not_read_for_ever(tiny_dir, folder, tmp_path):
    """Black-box round 15: `mkfifo gal/ka/pipe.png` hung `ml annotate` with no output."""
    import os
    import threading

    from ml.gallery import Gallery

    gallery = tmp_path / "gal" / "ka"
    gallery.mkdir(parents=True)
    cv2.imwrite(str(gallery / "real.png"), cv2.imread(str(folder / "a.png")))
    os.mkfifo(gallery / "pipe.png")
    found = {}
    scan = threading.Thread(target=lambda: found.update(items=Gallery.scan_dir(tmp_path / "gal")), daemon=True)
    scan.start()
    scan.join(10)
    assert found, "scanning the gallery blocked"
    assert [f.name for _, f in found["items"]] == ["real.png"]


@pytest.mark.parametrize("prompt, said", [("!!!", "has no letter or digit"), ("\U0001f527", "has no letter or digit"),
                                          ("a\x01b", "holds a control character")])
def test_a_prompt_the_api_would_refuse_is_refused(tiny_dir, folder, tmp_path, capsys, prompt, said):
    """Black-box round 15: '!!!', an emoji and a control character were taken (0 objects, exit 0)
    while the API refuses them."""
    with pytest.raises(SystemExit) as e:
        _annotate(tiny_dir, folder, tmp_path / "p.json", "--prompt", prompt)
    err = capsys.readouterr().err
    assert e.value.code == 2 and said in err and "Traceback" not in err, err


def test_out_paths_that_would_fail_late_are_refused_up_front(tiny_dir, folder, tmp_path, capsys):
    """A dangling --out link failed only after the whole run; tiny-models --out <a file> said
    'File exists'; a dangling link among --images was dropped without a warning."""
    import os

    link = tmp_path / "outlink.json"
    os.symlink(tmp_path / "missing" / "p.json", link)
    with pytest.raises(SystemExit) as e:
        _annotate(tiny_dir, folder, link)
    assert e.value.code == 2 and "whose folder does not exist" in capsys.readouterr().err
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    with pytest.raises(SystemExit) as e:
        main(["tiny-models", "--out", str(a_file)])
    assert e.value.code == 2 and "is a file, not a folder" in capsys.readouterr().err
    os.symlink(tmp_path / "gone.png", folder / "dangling.png")
    assert main(["annotate", "--images", str(folder), "--out", str(tmp_path / "q.json"),
                 "--config", str(tiny_dir / "config.json")]) == 0
    assert "warning: skipped dangling.png" in capsys.readouterr().err
