from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from training.models import FinalModel

        post_save.connect(
            _final_model_saved, sender=FinalModel, dispatch_uid="marketplace_final_model_accuracy"
        )


def _final_model_saved(sender, instance, **kwargs) -> None:
    """A final model saved (the training app cannot import the marketplace): its task's token's accuracy column
    (`marketplace.token_columns`) follows."""
    from marketplace import token_columns
    from marketplace.models import ModelToken

    token_columns.refresh(ModelToken.objects.filter(task_id=instance.task_id).values_list("pk", flat=True))
