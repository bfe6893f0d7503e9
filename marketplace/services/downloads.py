"""Access-controlled downloads: weights (safetensors), ONNX, the model card and a loading example, only for the
NFT owner and holders of an unexpired licence, through short-lived signed links bound to the user and the file
(django.core.signing.TimestampSigner, `LINK_MAX_AGE_S`). Files are read from private storage, never a public
path; access is checked again when a link is used."""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from marketplace.models import ModelToken
from marketplace.selectors import has_access
from marketplace.services.errors import MarketplaceRefused
from training.models import FinalModel, OnnxExport

LINK_MAX_AGE_S = 300
_SALT = "marketplace.download"
FILES = {
    "weights": ("model.safetensors", "application/octet-stream"),
    "onnx": ("model.onnx", "application/octet-stream"),
    "card": ("README.md", "text/markdown; charset=utf-8"),
    "example": ("load_model.py", "text/x-python; charset=utf-8"),
}

EXAMPLE = '''"""Load model NFT #{token_id} ({title}) and predict: ONNX with onnxruntime, weights with safetensors."""
import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

weights = load_file("model.safetensors")  # {{name: array}}: the trained parameters
print({{name: a.shape for name, a in weights.items()}})

session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
x = np.zeros((1, {shape}), dtype=np.float32)  # one example of feature shape {feature_shape}
logits = session.run(None, {{session.get_inputs()[0].name: x}})[0]
labels = {labels}  # the task's label set: columns of the logits
print("label:", labels[int(np.argmax(logits[0][labels]))])
'''


@dataclass(frozen=True)
class DownloadFile:
    kind: str
    filename: str
    content_type: str
    field: object | None = None  # a FieldFile in private storage
    text: str = ""


def _final_model(token: ModelToken):
    return FinalModel.objects.filter(task_id=token.task_id).select_related("task").first()


def available_files(*, token: ModelToken) -> list[DownloadFile]:
    """The files this model has now (no ONNX before the export job ran, no card before finalization wrote it)."""
    final = _final_model(token)
    if final is None:
        return []
    files = [DownloadFile("weights", *FILES["weights"], field=final.file)]
    onnx = OnnxExport.objects.filter(final_model=final).first()
    if onnx is not None:
        files.append(DownloadFile("onnx", *FILES["onnx"], field=onnx.file))
    if final.card:
        files.append(DownloadFile("card", *FILES["card"], field=final.card))
    task = final.task
    shape = ", ".join(str(int(d)) for d in task.feature_shape)
    text = EXAMPLE.format(
        token_id=token.token_id,
        title=task.title.replace('"', "'"),
        shape=shape,
        feature_shape=list(task.feature_shape),
        labels=list(task.label_set),
    )
    files.append(DownloadFile("example", *FILES["example"], text=text))
    return files


def download_links(*, token: ModelToken, user) -> list[dict]:
    """[{kind, filename, signed}] for every available file; MarketplaceRefused("forbidden") without access.
    `signed` goes in the download URL; it is valid `LINK_MAX_AGE_S` seconds, for this user and file only."""
    if not has_access(token=token, user=user):
        raise MarketplaceRefused(
            "forbidden", "Only the NFT's owner and holders of an unexpired licence can download this model."
        )
    signer = signing.TimestampSigner(salt=_SALT)
    return [
        {
            "kind": f.kind,
            "filename": f.filename,
            "signed": signer.sign_object({"u": user.pk, "t": token.pk, "f": f.kind}, compress=True),
        }
        for f in available_files(token=token)
    ]


def download_open(*, signed: str, user) -> tuple[ModelToken, DownloadFile]:
    """The file a signed link names, for the user it was made for, if they still have access.
    Raises MarketplaceRefused: ``link_expired``, ``link_invalid``, ``forbidden``, ``not_found``."""
    signer = signing.TimestampSigner(salt=_SALT)
    try:
        payload = signer.unsign_object(signed, max_age=LINK_MAX_AGE_S)
    except signing.SignatureExpired:
        raise MarketplaceRefused(
            "link_expired", "This download link has expired; ask for a new one."
        ) from None
    except signing.BadSignature:
        raise MarketplaceRefused("link_invalid", "This download link is not valid.") from None
    if not user.is_authenticated or payload.get("u") != user.pk:
        raise MarketplaceRefused("forbidden", "This download link was made for another account.")
    token = ModelToken.objects.filter(pk=payload.get("t")).first()
    if token is None:
        raise MarketplaceRefused("not_found", "No such model.")
    if not has_access(token=token, user=user):
        raise MarketplaceRefused(
            "forbidden", "Your access to this model has ended (licence expired or NFT sold)."
        )
    for f in available_files(token=token):
        if f.kind == payload.get("f"):
            return token, f
    raise MarketplaceRefused("not_found", "That file is not available for this model.")
