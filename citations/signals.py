"""A source deleted or edited outside the loader (the admin) moves the knowledge base's version,
so every worker reloads its passage vectors (citations/vectors.py)."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import IndexVersion, Source


@receiver(post_delete, sender=Source)
@receiver(post_save, sender=Source)
def source_changed(sender: type[Source], instance: Source, **kwargs: object) -> None:
    from .vectors import INDEX  # numpy and the models load only where vectors are used

    IndexVersion.bump()
    INDEX.clear()
