"""Find and read a gadget.yaml: a file, an unpacked gadget dir or a ``.snap``."""

from __future__ import annotations

from pathlib import Path

from ucimage.gadget.errors import GadgetError
from ucimage.gadget.model import GadgetInfo, ModelContext
from ucimage.gadget.parse import parse_gadget_yaml

GADGET_YAML = "meta/gadget.yaml"


def read_gadget_yaml(path: Path) -> tuple[bytes, Path | None, str]:
    """``(gadget.yaml bytes, gadget root or None, origin for messages)``."""
    if path.is_dir():
        yaml_path = path / GADGET_YAML
        if not yaml_path.is_file():
            hint = None
            if (path / "gadget.yaml").is_file():
                hint = f"gadget.yaml belongs in meta/: move it to {yaml_path}"
            raise GadgetError(f"cannot read gadget: {yaml_path} does not exist", hint=hint)
        return _read(yaml_path), path, str(yaml_path)
    if not path.exists():
        raise GadgetError(f"cannot read gadget: {path} does not exist")
    if path.suffix == ".snap":
        from ucimage.errors import UcimageError
        from ucimage.snaps import SnapFile

        try:
            data = SnapFile(path).read_file(GADGET_YAML)
        except UcimageError as exc:
            raise GadgetError(
                f"cannot read {GADGET_YAML} from {path}: {exc.message}", hint=exc.hint
            ) from None
        return data, None, f"{path}:{GADGET_YAML}"
    root = path.parent.parent if path.parent.name == "meta" else None
    return _read(path), root, str(path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GadgetError(f"cannot read {path}: {exc.strerror}") from None


def load_gadget(path: str | Path, *, model: ModelContext | None = None) -> GadgetInfo:
    """Read, parse and validate the gadget at *path* (see :mod:`ucimage.gadget`)."""
    data, root, origin = read_gadget_yaml(Path(path))
    return parse_gadget_yaml(data, model=model, root=root, origin=origin)
