"""``manage.py export_onnx TASK_ID``: export a completed task's final model to ONNX (idempotent) and print the check."""

from django.core.management.base import BaseCommand, CommandError

from training.models import FinalModel


class Command(BaseCommand):
    help = (
        "Export a task's final model to ONNX, checked against torch with onnxruntime, into private storage."
    )

    def add_arguments(self, parser):
        parser.add_argument("task_id", type=int)

    def handle(self, *args, **options):
        from training.onnx_export import OnnxCheckError
        from training.services.exports import ExportError, final_model_onnx_export

        final = FinalModel.objects.filter(task_id=options["task_id"]).select_related("task").first()
        if final is None:
            raise CommandError(f"Task {options['task_id']} has no final model (is it completed?).")
        try:
            export = final_model_onnx_export(final_model=final)
        except (ExportError, OnnxCheckError) as exc:
            raise CommandError(f"Export refused: {exc}") from exc
        self.stdout.write(
            f"{export.file.name}: sha256 {export.sha256}, opset {export.opset}, max |onnxruntime - torch| "
            f"{export.max_abs_diff:.2e} on {export.check_examples} validation examples, "
            f"{export.export_seconds:.1f} s"
        )
