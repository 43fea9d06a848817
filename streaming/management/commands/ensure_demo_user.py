import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Make sure the demo account exists (EVI360_DEMO_USERNAME, default 'demo'). Its password is "
        "EVI360_DEMO_PASSWORD, or generated and printed once when the account is created."
    )

    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        username = settings.EVI360_DEMO_USERNAME
        password = settings.EVI360_DEMO_PASSWORD
        user = User.objects.filter(username=username).first()
        if user is None:
            password = password or secrets.token_urlsafe(12)
            User.objects.create_user(username=username, password=password)
            self.stdout.write(
                self.style.SUCCESS(f"demo account created: username {username!r}, password {password!r}")
            )
            if not settings.EVI360_DEMO_PASSWORD:
                self.stdout.write("  (printed only this once; set EVI360_DEMO_PASSWORD to choose it)")
        elif password and not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"demo account {username!r}: password set from EVI360_DEMO_PASSWORD")
        else:
            self.stdout.write(
                f"demo account {username!r} exists (its password was printed when it was created)"
            )
