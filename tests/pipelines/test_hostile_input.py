"""Files that try to run code or exhaust the machine get one line naming the file and
the problem, before anything large is allocated."""

import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch

from pipelines.cli.main import main
from pipelines.common.limits import MemoryBudget, TooLargeError, parse_size
from pipelines.formats import InputError, read_input
from recon.weights.loading import UnsafeWeightsError, load_state
from tests.toys import PYDICOM_FILES


class _Payload:
    """Pickles to a call of ``open(marker, "w")``: loading it with unpickling creates the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_crafted_checkpoint_never_runs_code_on_resume(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"generator": _Payload(marker), "step": 1}, run / "checkpoint.pt")
    code = main(["train", "--model", "gan-drn", "--steps", "2", "--out", str(run), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    line = _one_line(err)
    assert "checkpoint.pt" in line and "never unpickled" in line
    assert "weights_only" not in line and "Weights only" not in line  # no torch advice to disable the check


def test_crafted_init_file_one_line_exit_2(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save(_Payload(marker), evil)
    code = main(["train", "--model", "gan-drn", "--steps", "1", "--out", str(tmp_path / "run"), "--init", str(evil)])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert "evil.pt" in _one_line(err) and "weights_only" not in err
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all")
    assert main(["train", "--steps", "1", "--out", str(tmp_path / "run2"), "--init", str(garbage)]) == 2
    assert "garbage.pt" in _one_line(capsys.readouterr().err)


def test_load_state_refuses_objects_and_accepts_tensors(tmp_path):
    torch.save({"weight": torch.ones(2), "step": 3, "history": [{"psnr": 1.0}]}, tmp_path / "ok.pt")
    assert load_state(tmp_path / "ok.pt")["step"] == 3
    torch.save({"config": _Payload(tmp_path / "x")}, tmp_path / "bad.pt")
    with pytest.raises(UnsafeWeightsError, match="bad.pt"):
        load_state(tmp_path / "bad.pt")
    assert not (tmp_path / "x").exists()


def test_a_refused_raw_pickle_gives_no_torch_warning(tmp_path):
    import pickle
    import warnings

    evil = tmp_path / "raw.pt"
    evil.write_bytes(pickle.dumps({"weight": _Payload(tmp_path / "x")}, protocol=4))
    with warnings.catch_warnings(record=True) as caught, pytest.raises(UnsafeWeightsError, match="raw.pt"):
        warnings.simplefilter("always")
        load_state(evil)
    assert not caught and not (tmp_path / "x").exists()  # torch's protocol warning is not our user's business


def test_every_torch_load_in_the_code_is_weights_only():
    root = Path(__file__).resolve().parents[2]
    for folder in ("physics", "masks", "recon", "pipelines", "scripts", "benchmarks", "tests"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text()
            assert "weights_only=False" not in text.replace('"weights_only=False"', ""), path


def test_hdf5_declaring_huge_kspace_is_refused_before_reading(tmp_path, capsys):
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as handle:  # 2 GiB declared, nothing written: a few KB on disk
        handle.create_dataset("kspace", shape=(16, 16, 1024, 1024), dtype=np.complex64, chunks=(1, 1, 64, 64))
    assert path.stat().st_size < 50_000
    with pytest.raises(TooLargeError, match=r"bomb.h5.*\(16, 16, 1024, 1024\).*budget is 1.0 GiB"):
        read_input(path, MemoryBudget(parse_size("1G")))
    code = main(["batch", str(path), "--out", str(tmp_path / "out"), "--methods", "zero-filled", "--max-memory", "1G"])
    out = capsys.readouterr().out
    assert code == 3 and "bomb.h5" in out and "memory budget" in out


def test_small_nifti_declaring_16384_squared_is_refused(tmp_path):
    header = nib.Nifti1Header()
    header.set_data_shape((16384, 16384, 1))
    header.set_data_dtype(np.float32)
    path = tmp_path / "inflate.nii.gz"
    with nib.openers.Opener(path, "wb") as handle:  # a header and a few bytes of data
        header.write_to(handle)
        handle.write(b"\0" * 4096)
    assert path.stat().st_size < 10_000
    with pytest.raises(TooLargeError, match=r"inflate.nii.gz.*\(16384, 16384, 1\).*512.0 MiB"):
        read_input(path, MemoryBudget(parse_size("512M")))
    code = main(["run", "--input", str(path), "--max-memory", "512M", "--out", str(tmp_path / "run")])
    assert code == 2


def _deflated_dicom(path: Path, side: int) -> None:
    """A Deflated Explicit VR Little Endian MR image of side x side 16-bit zeros, written by
    streaming the pixel data through zlib (the test never holds the inflated bytes)."""
    template = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    del template.PixelData
    template.Rows = template.Columns = side
    buffer = io.BytesIO()
    template.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    pydicom.filewriter.write_dataset(pydicom.filebase.DicomFileLike(buffer), template)
    buffer_bytes = buffer.getvalue()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = [compressor.compress(buffer_bytes)]
    pixels = side * side * 2
    body.append(compressor.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixels)))
    zeros = bytes(1 << 20)
    for _ in range(pixels // len(zeros)):
        body.append(compressor.compress(zeros))
    body.append(compressor.compress(bytes(pixels % len(zeros))))
    body.append(compressor.flush())
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = template.SOPClassUID
    meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    meta_buffer = io.BytesIO()
    pydicom.filewriter.write_file_meta_info(pydicom.filebase.DicomFileLike(meta_buffer), meta)
    path.write_bytes(b"\0" * 128 + b"DICM" + meta_buffer.getvalue() + b"".join(body))


def test_deflated_dicom_bomb_is_refused_while_inflating(tmp_path):
    path = tmp_path / "bomb.dcm"
    _deflated_dicom(path, 8192)  # inflates to 128 MiB
    assert path.stat().st_size < 1_000_000
    with pytest.raises(TooLargeError, match=r"bomb.dcm.*inflates to more than"):
        read_input(path, MemoryBudget(parse_size("64M")))
    small = tmp_path / "small.dcm"
    _deflated_dicom(small, 64)  # a sane deflated file still reads
    with pytest.raises(InputError, match="all zero"):  # readable; refused only for being empty
        read_input(small, MemoryBudget(parse_size("64M")))


def test_mask_of_60000_squared_is_refused(tmp_path, capsys):
    code = main(["mask", "--shape", "60000,60000", "--out", str(tmp_path / "m.npy")])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "(60000, 60000)" in line and "memory budget" in line
    assert not (tmp_path / "m.npy").exists()
    assert main(["mask", "--shape", "64,64", "--out", str(tmp_path / "m.npy")]) == 0


def test_max_memory_option_is_validated(capsys, tmp_path):
    assert main(["mask", "--shape", "8,8", "--out", str(tmp_path / "m.npy"), "--max-memory", "lots"]) == 2
    assert "--max-memory" in _one_line(capsys.readouterr().err)


def test_yaml_alias_bomb_is_refused(tmp_path, capsys):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]")
    lines.append("methods: *i")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 1000
    assert main(["run", "--config", str(path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "bomb.yaml" in line and "aliases" in line


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("c.json", '{"methods": 123}', "key 'methods'"),
        ("c.json", '{"slices": "four"}', "key 'slices'"),
        ("c.json", '{"phase": 1}', "key 'phase'"),
        ("c.toml", "noise_snr = nan", "key 'noise_snr' must be finite"),
        ("c.toml", 'coils = "eight"', "key 'coils'"),
        ("c.yaml", "methods: [1, 2]", "key 'methods'"),
        ("c.yaml", "!!python/object/apply:os.system ['true']", "cannot parse YAML"),
    ],
)
def test_config_values_are_type_checked(tmp_path, capsys, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    assert main(["run", "--config", str(path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert name in line and expected in line and "TypeError" not in line


def test_finite_but_huge_values_are_named_as_such_not_as_nan(tmp_path, capsys):
    huge = tmp_path / "huge.npy"
    np.save(huge, np.full((2, 64, 64), 1e37, dtype=np.float32))
    code = main(["run", "--input", str(huge), "--methods", "zero-filled", "--estimate-folds", "0",
                 "--out", str(tmp_path / "run")])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "huge.npy" in line and "too large" in line and "NaN" not in line
    assert main(["batch", str(huge), "--out", str(tmp_path / "batch"), "--methods", "zero-filled"]) == 3
    assert "too large" in capsys.readouterr().out


def test_a_cfl_without_its_header_is_named_as_a_bart_pair(tmp_path, capsys):
    (tmp_path / "k.cfl").write_bytes(np.zeros(64, np.complex64).tobytes())
    assert main(["batch", str(tmp_path / "k.cfl"), "--out", str(tmp_path / "out"), "--methods", "zero-filled"]) == 3
    out = capsys.readouterr().out
    assert "k.hdr is missing" in out and "DICOM" not in out


@pytest.mark.skipif(not shutil.which("ismrmrd_generate_cartesian_shepp_logan"), reason="ismrmrd-tools not installed")
def test_an_ismrmrd_header_without_a_matrix_size_is_named(tmp_path, capsys):
    import re

    raw = tmp_path / "shepp.h5"
    subprocess.run(["ismrmrd_generate_cartesian_shepp_logan", "-o", str(raw), "-m", "32"], check=True, capture_output=True)
    with h5py.File(raw, "r+") as handle:
        text = handle["dataset/xml"][0]
        text = text.decode() if isinstance(text, bytes) else text
        del handle["dataset/xml"]
        handle["dataset"].create_dataset("xml", data=[re.sub(r"<matrixSize>.*?</matrixSize>", "", text, flags=re.S)],
                                         dtype=h5py.string_dtype())
    assert main(["batch", str(raw), "--out", str(tmp_path / "out"), "--methods", "zero-filled"]) == 3
    out = capsys.readouterr().out
    assert "shepp.h5" in out and "no encodedSpace matrix size" in out and "acquisition table" not in out


def test_a_full_disk_during_recon_run_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import errno

    from pipelines.run import workflow as run_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "report.html"))

    monkeypatch.setattr(run_module, "write_report", full)
    code = main(["run", "--slices", "1", "--methods", "zero-filled", "--estimate-folds", "0", "--out", str(tmp_path / "run")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("recon: ")]  # not progress lines
    line = _one_line("\n".join(errors))
    assert code == 1 and "no space left on device" in line and "report.html" in line
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run*"))


def test_a_finished_batch_leaves_no_lock_file(tmp_path):
    stack = tmp_path / "a.npy"
    np.save(stack, np.random.default_rng(0).random((1, 32, 32)).astype(np.float32))
    assert main(["batch", str(stack), "--out", str(tmp_path / "out"), "--methods", "zero-filled",
                 "--estimate-folds", "0"]) == 0
    assert not (tmp_path / "out" / ".recon.lock").exists()


def test_a_fastmri_header_that_is_not_utf8_xml_is_left_out_with_a_note(tmp_path):
    kspace = (np.random.default_rng(0).standard_normal((2, 2, 32, 24)) + 0j).astype(np.complex64)
    path = tmp_path / "bad_header.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=kspace)
        handle.create_dataset("ismrmrd_header", data=b"\xff\xfe<ismrmrdHeader><reconSpace><matrixSize><x>16</x>")
    (study,), notes = read_input(path)
    assert study.meta["crop"] is None and study.kspace.shape == (2, 2, 32, 24)
    assert any("bad_header.h5" in note and "not valid UTF-8 XML" in note for note in notes)
