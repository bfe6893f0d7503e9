from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self) -> None:
        # Fill the task catalog from training's registries (tasks sits below training and never imports it).
        from tasks import catalog
        from training.contribution import SCORERS
        from training.defence import RULES
        from training.model_kinds import MODEL_KINDS

        for rule in RULES.values():
            catalog.aggregation_rules.register(rule.entry)
        for scorer in SCORERS.values():
            catalog.scorers.register(scorer.entry)
        for kind in MODEL_KINDS:
            catalog.model_kinds.register(kind)

        # React to the task domain (join -> register the node key; ban -> unregister the person's nodes) and
        # add the "Training" section to the task page: tasks signals and offers hooks, never imports training.
        from tasks.page_sections import task_detail_sections
        from training import receivers
        from training.views import TRAINING_SECTION

        receivers.connect()
        task_detail_sections.register(TRAINING_SECTION)
